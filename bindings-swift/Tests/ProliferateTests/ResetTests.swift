// A client behind what the server's log still holds is reset to the transcript.

import Foundation
import XCTest

@testable import Proliferate

final class ResetTests: XCTestCase {
    func testAConnectionBehindTheLogIsResetToTheTranscript() async throws {
        // Only the newest four events of each session are kept.
        let server = try TestServer(settings: ["--retained-events", "4"])
        defer { server.stop() }
        let client = try server.client()
        let session = try await client.createSession(request: CreateSessionRequest(title: "reset"))
        let connection = await client.connect(sessionId: session.id)
        let watchdog = deadline(240, connection)
        defer { watchdog.cancel() }
        try await untilRunning(connection)
        var head: UInt64 = 0
        for answer in ["first answer", "second answer"] {
            let admission = try await connection.sendPrompt(content: "[[say:\(answer)]]")
            let read = try await eventsUntil(connection) { envelope in
                if case let .turnCompleted(turn) = envelope.event { return turn.promptId == admission.promptId }
                return false
            }
            head = try XCTUnwrap(read.last).seq
        }
        await connection.close()

        // Control: a client at the head resumes with nothing to catch up on and no reset.
        let current = await client.connect(sessionId: session.id, afterSeq: head)
        let currentWatchdog = deadline(60, current)
        defer { currentWatchdog.cancel() }
        reading: while let update = try await current.next() {
            switch update {
            case .reset:
                XCTFail("a client at the head is not reset")
            case let .replayDone(throughSeq):
                XCTAssertEqual(throughSeq, head)
                break reading
            default:
                continue
            }
        }
        await current.close()

        let behind = await client.connect(sessionId: session.id, afterSeq: 1)
        let behindWatchdog = deadline(60, behind)
        defer { behindWatchdog.cancel() }
        var reset: (reason: String, transcript: Transcript)?
        reading: while let update = try await behind.next() {
            switch update {
            case .event:
                XCTFail("no event before the reset")
            case let .reset(reason, transcript):
                reset = (reason, transcript)
                break reading
            default:
                continue
            }
        }
        await behind.close()
        let (reason, transcript) = try XCTUnwrap(reset)
        XCTAssertEqual(reason, "cursor_expired")
        XCTAssertGreaterThanOrEqual(transcript.throughSeq, head)
        let texts = transcript.messages.flatMap { message in
            message.parts.compactMap { part -> String? in
                if case let .text(textPart) = part { return textPart.text }
                return nil
            }
        }
        XCTAssertTrue(texts.contains("first answer") && texts.contains("second answer"), "\(texts)")

        do {
            _ = try await client.events(sessionId: session.id, afterSeq: 1)
            XCTFail("events the log no longer holds are cursor_expired")
        } catch let error as ProliferateError {
            XCTAssertEqual(error.code, "cursor_expired")
        }
        try await client.deleteSession(sessionId: session.id)
    }
}
