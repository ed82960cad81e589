// Replays one session from `after_seq=0` to `replay_done`, through the binding or through a plain
// `URLSessionWebSocketTask` client, and prints `{"events": N, "seconds": S}`: a consumer of the
// bindings' benchmark (bench/src/bindings.rs has the contract).

import Foundation
import Proliferate

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

struct Failure: Error, CustomStringConvertible {
    let description: String
}

let environment = ProcessInfo.processInfo.environment
let url = environment["PROLIFERATE_URL"]!
let token = environment["PROLIFERATE_TOKEN"]!
let session = environment["PROLIFERATE_SESSION"]!

func binding() async throws -> Int {
    let client = try Client(baseURL: url, token: token, source: "bench")
    let connection = await client.connect(sessionId: session, afterSeq: 0)
    var events = 0
    var done = false
    replaying: for try await update in connection.updates() {
        switch update {
        case .event: events += 1
        case .replayDone:
            done = true
            break replaying
        default: continue
        }
    }
    await connection.close()
    guard done else { throw Failure(description: "the connection closed before replay_done") }
    return events
}

func plain() async throws -> Int {
    let address = url.replacingOccurrences(of: "http", with: "ws", options: .anchored)
        + "/v1/sessions/\(session)/ws?after_seq=0&source=bench"
    var request = URLRequest(url: URL(string: address)!)
    request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
    // swift-corelibs-foundation (6.0.3, over libcurl) sends `Connection: keep-alive` in place of
    // curl's `Connection: Upgrade`, which the gateway refuses (400, "Connection header did not
    // include 'upgrade'"); Apple's Foundation needs no such line.
    request.setValue("Upgrade", forHTTPHeaderField: "Connection")
    let socket = URLSession.shared.webSocketTask(with: request)
    socket.resume()
    defer { socket.cancel(with: .normalClosure, reason: nil) }
    var events = 0
    // It also hands over each piece of a frame that straddles two reads as a message of its own
    // (swiftlang/swift-corelibs-foundation#5255), so a piece that does not parse waits for the next.
    var pending = Data()
    while true {
        switch try await socket.receive() {
        case let .string(text): pending.append(contentsOf: text.utf8)
        case let .data(bytes): pending.append(bytes)
        @unknown default: throw Failure(description: "an unknown message")
        }
        guard let frame = try? JSONSerialization.jsonObject(with: pending) as? [String: Any] else {
            if pending.count > 1 << 24 { throw Failure(description: "a frame that does not parse") }
            continue
        }
        pending.removeAll(keepingCapacity: true)
        switch frame["type"] as? String {
        case "event": events += 1
        case "replay_done": return events
        default: continue
        }
    }
}

let replay = ["binding": binding, "plain": plain][environment["PROLIFERATE_CLIENT"] ?? ""]!
let clock = ContinuousClock()
let started = clock.now
let events = try await replay()
let elapsed = (clock.now - started).components
let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
print("{\"events\": \(events), \"seconds\": \(seconds)}")
