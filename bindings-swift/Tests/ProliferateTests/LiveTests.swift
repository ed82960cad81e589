// The shared scenarios, reconnect without loss, subscriptions and the error paths, against the
// real server.

import Foundation
import XCTest

@testable import Proliferate

final class LiveTests: XCTestCase {
    static var server: TestServer!

    override class func setUp() {
        super.setUp()
        server = try! TestServer()
    }

    override class func tearDown() {
        server.stop()
        super.tearDown()
    }

    var server: TestServer { Self.server }

    func promptOf(_ event: Event, running: String?) -> String? {
        switch event {
        case let .userMessage(message): return message.promptId
        case let .turnStarted(turn): return turn.promptId
        case let .turnCompleted(turn): return turn.promptId
        case let .turnCancelled(turn): return turn.promptId
        case let .queuedPromptCancelled(cancelled): return cancelled.promptId
        case let .agentError(error): return error.promptId
        default: return running
        }
    }

    func simplify(_ transcript: Transcript) -> [[String: Any]] {
        transcript.messages.map { message in
            var text = ""
            var tools: [[String: String]] = []
            for part in message.parts {
                if case let .text(textPart) = part { text += textPart.text }
                if case let .tool(call) = part { tools.append(["tool": call.tool, "status": call.status]) }
            }
            return ["role": message.role, "text": text, "tools": tools]
        }
    }

    func testEverySharedScenarioReplays() async throws {
        let folder = Environment.repository.appendingPathComponent("fixtures/scenarios")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }.sorted()
        XCTAssertGreaterThanOrEqual(names.count, 4)
        let client = try server.client()
        for name in names {
            let data = try Data(contentsOf: folder.appendingPathComponent(name))
            let scenario = try JSONSerialization.jsonObject(with: data) as! [String: Any]
            let session = try await client.createSession(request: CreateSessionRequest())
            let connection = await client.connect(sessionId: session.id)
            let watchdog = deadline(240, connection)
            defer { watchdog.cancel() }
            try await untilRunning(connection)
            let reducer = TranscriptReducer(sessionId: session.id)
            var seen: [EventEnvelope] = []
            for step in scenario["steps"] as! [[String: Any]] {
                if let prompt = step["send_prompt"] as? [String: Any] {
                    let admission = try await connection.sendPrompt(content: prompt["content"] as! String, promptId: prompt["prompt_id"] as? String)
                    XCTAssertEqual(Int(admission.queuePosition), prompt["queue_position"] as? Int, name)
                } else if let wait = step["wait_for"] as? [String: Any] {
                    let wanted = wait["event"] as! String
                    let promptId = wait["prompt_id"] as? String
                    let matches = { (envelope: EventEnvelope, running: String?) in
                        envelope.eventType == wanted && (promptId == nil || self.promptOf(envelope.event, running: running) == promptId)
                    }
                    if !seen.contains(where: { matches($0, nil) }) {
                        var running = try reducer.transcript().runningPromptId
                        let read = try await eventsUntil(connection) { envelope in
                            if case let .turnStarted(started) = envelope.event { running = started.promptId }
                            return matches(envelope, running)
                        }
                        for envelope in read { _ = try reducer.apply(envelope: envelope) }
                        seen += read
                    }
                } else if step["cancel"] != nil {
                    let cancelled = try await connection.cancel()
                    XCTAssertTrue(cancelled, "\(name): a turn was running")
                } else if let cancel = step["cancel_queued"] as? [String: Any] {
                    try await connection.cancelQueued(promptId: cancel["prompt_id"] as! String)
                } else {
                    XCTFail("\(name): unknown step \(step)")
                }
            }
            var expected = (scenario["expect"] as! [String: Any])["events_in_order"] as! [String]
            let kinds = seen.map(\.eventType)
            for kind in kinds where kind == expected.first { expected.removeFirst() }
            XCTAssertEqual(expected, [], "\(name): missing in order from \(kinds)")

            let serverTranscript = try await client.transcript(sessionId: session.id)
            if try reducer.transcript().throughSeq < serverTranscript.throughSeq {
                let target = serverTranscript.throughSeq
                for envelope in try await eventsUntil(connection, { $0.seq >= target }) {
                    _ = try reducer.apply(envelope: envelope)
                }
            }
            XCTAssertEqual(try reducer.transcript(), serverTranscript, "\(name): the reducer and the server agree")
            let actual = simplify(serverTranscript)
            let wanted = (scenario["expect"] as! [String: Any])["transcript"] as! [[String: Any]]
            XCTAssertEqual(actual.count, wanted.count, "\(name): \(actual)")
            for (message, expectation) in zip(actual, wanted) {
                XCTAssertEqual(message["role"] as? String, expectation["role"] as? String, name)
                XCTAssertEqual((message["tools"] as! [[String: String]]) as NSArray, expectation["tools"] as! NSArray, name)
                if let text = expectation["text"] as? String { XCTAssertEqual(message["text"] as? String, text, name) }
            }
            await connection.close()
            try await client.deleteSession(sessionId: session.id)
        }
    }

    func testReconnectsAfterSilenceWithoutLoss() async throws {
        // A server of its own: this test freezes it.
        let frozen = try TestServer()
        defer { frozen.stop() }
        let client = try Client(options: ClientOptions(
            baseUrl: frozen.url, token: try frozen.token(), source: "swift-tests", livenessTimeoutMs: 1000))
        let session = try await client.createSession(request: CreateSessionRequest(title: "silence"))
        let connection = await client.connect(sessionId: session.id)
        let watchdog = deadline(240, connection)
        defer { watchdog.cancel() }
        try await untilRunning(connection)
        let words = (1...400).map { "w\($0)" }.joined(separator: " ")
        _ = try await connection.sendPrompt(content: "[[delay:20]] [[say:\(words)]]")
        var seqs: [UInt64] = []
        var reconnects = 0
        var froze = false
        reading: while let update = try await connection.next() {
            switch update {
            case .reconnecting:
                reconnects += 1
            case let .event(envelope):
                seqs.append(envelope.seq)
                if case .textDelta = envelope.event, !froze, seqs.count > 20 {
                    froze = true
                    try await frozen.freeze(seconds: 3)
                }
                if envelope.eventType == "turn_completed" { break reading }
            default:
                continue
            }
        }
        XCTAssertTrue(froze)
        XCTAssertGreaterThanOrEqual(reconnects, 1)
        // The status events before `running` were read by `untilRunning`; the rest arrive once each.
        let first = try XCTUnwrap(seqs.first)
        XCTAssertEqual(seqs, Array(first..<first + UInt64(seqs.count)), "every seq once, in order")
        let page = try await client.events(sessionId: session.id, afterSeq: first - 1, limit: 10000)
        XCTAssertEqual(Array(page.map(\.seq).prefix(seqs.count)), seqs)
        await connection.close()
        try await client.deleteSession(sessionId: session.id)
    }

    func testEventSequenceStreamsATurnAndLeavesTheRestToTheNextReader() async throws {
        let client = try server.client()
        let session = try await client.createSession(request: CreateSessionRequest(title: "sequence"))
        let connection = await client.connect(sessionId: session.id)
        let watchdog = deadline(240, connection)
        defer { watchdog.cancel() }
        let admission = try await connection.sendPrompt(content: "[[say:streamed to swift]]")
        var text = ""
        for try await envelope in connection.events() {
            if case let .textDelta(delta) = envelope.event { text += delta.delta }
            if case let .turnCompleted(turn) = envelope.event, turn.promptId == admission.promptId { break }
        }
        XCTAssertEqual(text, "streamed to swift")
        let usage = try await client.usage(sessionId: session.id)
        XCTAssertGreaterThanOrEqual(usage.requests, 1)
        XCTAssertGreaterThan(usage.total.output, 0)
        XCTAssertEqual(usage.byModel.first?.model, "scripted/scripted-model")
        XCTAssertEqual(session.model, "scripted/scripted-model")
        let before1970 = try await client.organizationUsage(start: nil, end: 0)
        XCTAssertEqual(before1970.requests, 0, "nothing was spent before 1970")
        // A loop reads nothing ahead: over a replayed backlog, its cursor is its last event and
        // the next event goes to the next reader.
        let replaying = await client.connect(sessionId: session.id, afterSeq: 0)
        let guardrail = deadline(120, replaying)
        defer { guardrail.cancel() }
        var taken: [UInt64] = []
        for try await envelope in replaying.events() {
            taken.append(envelope.seq)
            if taken.count == 3 { break }
        }
        XCTAssertEqual(replaying.lastSeq(), 3)
        let next = try await eventsUntil(replaying) { _ in true }
        XCTAssertEqual(taken + next.map(\.seq), [1, 2, 3, 4])
        await replaying.close()
        await connection.close()
        try await client.deleteSession(sessionId: session.id)
    }

    func testASubscriptionDeliversUntilItsHandleCancelsIt() async throws {
        let client = try server.client()
        let session = try await client.createSession(request: CreateSessionRequest())
        let connection = await client.connect(sessionId: session.id)
        let watchdog = deadline(240, connection)
        defer { watchdog.cancel() }
        let (updates, continuation) = AsyncStream.makeStream(of: Update.self)
        let handle = await connection.subscribe(listener: Forwarder(continuation))
        let admission = try await connection.sendPrompt(content: "[[say:pushed]]")
        var text = ""
        for await update in updates {
            guard case let .event(envelope) = update else { continue }
            if case let .textDelta(delta) = envelope.event { text += delta.delta }
            if case let .turnCompleted(turn) = envelope.event, turn.promptId == admission.promptId { break }
        }
        XCTAssertEqual(text, "pushed")
        XCTAssertFalse(handle.isFinished(), "the subscription runs until cancelled")
        handle.cancel()
        while !handle.isFinished() { try await Task.sleep(nanoseconds: 10_000_000) }
        await connection.close()
        try await client.deleteSession(sessionId: session.id)
    }

    func testATokenSourceIsAskedAgainWhenTheTokenExpired() async throws {
        let tokens = Tokens(expired: try server.token(ttlSecs: 1), fresh: try server.token())
        try await Task.sleep(nanoseconds: 2_100_000_000)  // past the one-second lifetime of `expired`
        let client = try Client.withTokenSource(options: ClientOptions(baseUrl: server.url), tokenSource: tokens)
        let session = try await client.createSession(request: CreateSessionRequest())
        XCTAssertEqual(tokens.asked, [false, true], "an expired token is refreshed once")
        let connection = await client.connect(sessionId: session.id)
        let watchdog = deadline(120, connection)
        defer { watchdog.cancel() }
        guard case .connected = try await connection.next() else { return XCTFail("not connected") }
        XCTAssertEqual(tokens.asked, [false, true, false, true], "the connection refreshes too")
        await connection.close()
        try await client.deleteSession(sessionId: session.id)

        let failing = try Client.withTokenSource(options: ClientOptions(baseUrl: server.url), tokenSource: Tokens(expired: nil, fresh: nil))
        do {
            _ = try await failing.listSessions()
            XCTFail("a token source that throws fails the call")
        } catch let error as ProliferateError {
            XCTAssertEqual(error.code, "unauthenticated")
            XCTAssertTrue("\(error)".contains("no token in the keychain"), "\(error)")
        }
    }

    func testCheckpointsAtRandomPointsResumeEveryEventOnce() async throws {
        let client = try server.client()
        let session = try await client.createSession(request: CreateSessionRequest())
        let writer = await client.connect(sessionId: session.id)
        let watchdog = deadline(240, writer)
        defer { watchdog.cancel() }
        try await untilRunning(writer)
        let words = (1...300).map { "w\($0)" }.joined(separator: " ")
        _ = try await writer.sendPrompt(content: "[[say:\(words)]]", promptId: "prm_checkpoint")
        // The whole turn is in the log, so every resume replays a backlog the connection
        // receives faster than the test takes it.
        _ = try await eventsUntil(writer) { envelope in
            if case let .turnCompleted(turn) = envelope.event { return turn.promptId == "prm_checkpoint" }
            return false
        }
        var random = SystemRandomNumberGenerator()
        var taken: [EventEnvelope] = []
        var checkpoint: UInt64 = 0
        var resumes = 0
        var done = false
        while !done {
            let reader = await client.connect(sessionId: session.id, afterSeq: checkpoint)
            let guardrail = deadline(120, reader)
            var take = Int.random(in: 1...40, using: &random)
            let before = taken.count
            for try await envelope in reader.events() {
                taken.append(envelope)
                take -= 1
                if case let .turnCompleted(turn) = envelope.event, turn.promptId == "prm_checkpoint" { done = true }
                if done || take == 0 { break }
                try await Task.sleep(nanoseconds: UInt64.random(in: 0..<4_000_000, using: &random))
            }
            guardrail.cancel()
            checkpoint = reader.lastSeq()
            XCTAssertEqual(checkpoint, taken.last?.seq)
            await reader.close()
            resumes += 1
            guard taken.count > before else { return XCTFail("resuming after \(checkpoint) read nothing") }
        }
        XCTAssertGreaterThanOrEqual(resumes, 5)
        XCTAssertEqual(taken.map(\.seq), Array(1...UInt64(taken.count)), "every seq once, in order")
        let logged = try await client.events(sessionId: session.id, afterSeq: 0, limit: 10000)
        XCTAssertEqual(Array(logged.prefix(taken.count)), taken)
        await writer.close()
        try await client.deleteSession(sessionId: session.id)
    }

    func testErrorsCarryTheProtocolCodes() async throws {
        let stranger = try Client(baseURL: server.url, token: "not-a-token")
        do {
            _ = try await stranger.listSessions()
            XCTFail("a bad token is refused")
        } catch let error as ProliferateError {
            XCTAssertEqual(error.code, "unauthenticated")
            guard case let .Api(_, _, status) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(status, 401)
        }
        let client = try server.client()
        do {
            _ = try await client.getSession(sessionId: "ses_does_not_exist")
            XCTFail("an unknown session is not found")
        } catch let error as ProliferateError {
            XCTAssertEqual(error.code, "not_found")
        }
        let session = try await client.createSession(request: CreateSessionRequest())
        let other = try server.client(subject: "eve", organization: "other")
        do {
            _ = try await other.getSession(sessionId: session.id)
            XCTFail("another organisation cannot see the session")
        } catch let error as ProliferateError {
            XCTAssertEqual(error.code, "not_found")
        }
        do {
            try await client.replyPermission(sessionId: session.id, permissionId: "per_x", decision: "maybe")
            XCTFail("a bad decision is a bad request")
        } catch let error as ProliferateError {
            XCTAssertEqual(error.code, "bad_request")
        }
        do {
            _ = try await client.sendMessage(sessionId: session.id, content: "")
            XCTFail("an empty prompt is a bad request")
        } catch let error as ProliferateError {
            XCTAssertEqual(error.code, "bad_request")
        }
        let unchanged = try await client.getSession(sessionId: session.id)
        XCTAssertEqual(unchanged.id, session.id)
        let nowhere = try Client(options: ClientOptions(baseUrl: "http://127.0.0.1:9", token: "t", requestTimeoutMs: 5000))
        do {
            _ = try await nowhere.listSessions()
            XCTFail("an unreachable gateway is unavailable")
        } catch let error as ProliferateError {
            XCTAssertEqual(error.code, "unavailable")
        }
        XCTAssertThrowsError(try Client(options: ClientOptions(baseUrl: "not a url", token: "t"))) { error in
            XCTAssertEqual((error as? ProliferateError)?.code, "internal")
        }
        try await client.deleteSession(sessionId: session.id)
    }

    func testSandboxLimitsAskedForAreInForceAndAboveTheServersAreRefused() async throws {
        let client = try server.client()
        let limits = SandboxLimits(memoryBytes: 1 << 30, processes: 256)
        let session = try await client.createSession(
            request: CreateSessionRequest(limits: limits, egressAllow: ["*.github.com"]))
        XCTAssertEqual(session.limits?.memoryBytes, 1 << 30)
        XCTAssertEqual(session.limits?.processes, 256)
        XCTAssertEqual(session.egressAllow, ["*.github.com"])
        let tooMuch = SandboxLimits(memoryBytes: 1 << 50)
        do {
            _ = try await client.createSession(request: CreateSessionRequest(limits: tooMuch))
            XCTFail("limits above the server's are refused")
        } catch let error as ProliferateError {
            XCTAssertEqual(error.code, "bad_request")
        }
        try await client.deleteSession(sessionId: session.id)
    }

    func testServiceCredentialsSignTheirOwnTokens() async throws {
        let service = try Client(options: ClientOptions(
            baseUrl: server.url, serviceName: "ios-backend", serviceOrganization: "acme",
            serviceSecret: try server.serviceSecret()))
        let session = try await service.createSession(request: CreateSessionRequest(title: "from a service"))
        XCTAssertEqual(session.createdBy, "ios-backend")
        try await service.deleteSession(sessionId: session.id)
    }
}

/// Forwards a subscription's updates into an `AsyncStream`.
final class Forwarder: UpdateListener, @unchecked Sendable {
    let continuation: AsyncStream<Update>.Continuation

    init(_ continuation: AsyncStream<Update>.Continuation) { self.continuation = continuation }

    func onUpdate(update: Update) { continuation.yield(update) }
    func onError(error: ProliferateError) { continuation.finish() }
    func onClosed() { continuation.finish() }
}

/// Hands out an expired token until asked to refresh, and records each ask; with no tokens, it
/// throws.
final class Tokens: TokenSource, @unchecked Sendable {
    let expired: String?
    let fresh: String?
    private let lock = NSLock()
    private var asks: [Bool] = []

    init(expired: String?, fresh: String?) { (self.expired, self.fresh) = (expired, fresh) }

    var asked: [Bool] { lock.withLock { asks } }

    func token(refresh: Bool) async throws -> String {
        lock.withLock { asks.append(refresh) }
        guard let token = refresh ? fresh : expired else {
            throw ProliferateError.Config(code: "internal", message: "no token in the keychain")
        }
        return token
    }
}
