// Streams one agent turn to the terminal.
//
//   cd examples/swift && PROLIFERATE_URL=http://127.0.0.1:8787 PROLIFERATE_TOKEN=... \
//       swift run -Xlinker -L<folder of libproliferate_ffi.a> stream-turn "[[bash:ls]]"
//
// `scripts/run` starts a server and prints a token.

import Foundation
import Proliferate

let environment = ProcessInfo.processInfo.environment
let prompt = CommandLine.arguments.dropFirst().joined(separator: " ")

do {
    let client = try Client(
        baseURL: environment["PROLIFERATE_URL"] ?? "http://127.0.0.1:8787",
        token: environment["PROLIFERATE_TOKEN"] ?? "", source: "cli")
    let session = try await client.createSession(request: CreateSessionRequest(title: "swift example"))
    print("session \(session.id)")
    let connection = await client.connect(sessionId: session.id)
    let admission = try await connection.sendPrompt(content: prompt.isEmpty ? "Say hello" : prompt)
    streaming: for try await envelope in connection.events() {
        switch envelope.event {
        case let .textDelta(text):
            print(text.delta, terminator: "")
            fflush(stdout)
        case let .toolStarted(tool):
            print("\n[tool \(tool.tool)]")
        case let .toolCompleted(tool):
            print(tool.output.trimmingCharacters(in: .newlines))
        case let .permissionRequested(request):
            print("\n[permission \(request.permission): allowing once]")
            try await connection.replyPermission(permissionId: request.permissionId, decision: "once")
        case let .agentError(error):
            print("\n[agent error: \(error.message)]")
        case let .turnCompleted(turn) where turn.promptId == admission.promptId:
            print()
            break streaming
        default:
            continue
        }
    }
    await connection.close()
    try await client.deleteSession(sessionId: session.id)
} catch let error as ProliferateError {
    FileHandle.standardError.write(Data("\(error.code): \(error)\n".utf8))
    exit(1)
}
