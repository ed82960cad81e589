// Starts the real `proliferate-server` (real OpenCode, scripted model) for the tests.

import Foundation
import XCTest

@testable import Proliferate

/// Paths the test command passes in, identical inside and outside the chroot.
enum Environment {
    static func value(_ name: String) -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            fatalError("\(name) is not set; run scripts/test-swift")
        }
        return value
    }

    static var serverProgram: String { value("PROLIFERATE_SERVER_BIN") }
    static var repository: URL { URL(fileURLWithPath: value("PROLIFERATE_REPOSITORY")) }
}

/// A running server in its own data folder.
final class TestServer {
    let dataDirectory: URL
    private(set) var process: Process
    private(set) var url: String

    /// Starts a server; `settings` are extra command-line flags.
    init(port: Int = 0, dataDirectory: URL? = nil, settings: [String] = []) throws {
        self.dataDirectory = dataDirectory ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("proliferate-swift-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.dataDirectory, withIntermediateDirectories: true)
        (process, url) = try TestServer.launch(port: port, dataDirectory: self.dataDirectory, settings: settings)
    }

    private static func launch(port: Int, dataDirectory: URL, settings: [String]) throws -> (Process, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Environment.serverProgram)
        process.arguments = ["serve", "--listen", "127.0.0.1:\(port)", "--data-dir", dataDirectory.path] + settings
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // The first line that says where it listens; log lines may come before it.
        var text = ""
        while !text.contains("listening on ") || !text[text.range(of: "listening on ")!.upperBound...].contains("\n") {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else {
                kill(process.processIdentifier, SIGKILL)
                throw ProliferateError.Closed(code: "unavailable", message: "the server exited: \(text)")
            }
            text += String(decoding: chunk, as: UTF8.self)
        }
        // Keep reading, so the server never blocks on a full pipe.
        Thread.detachNewThread { while !output.fileHandleForReading.availableData.isEmpty {} }
        let start = text.range(of: "listening on ")!
        let url = text[start.upperBound...].prefix { !$0.isWhitespace }
        return (process, String(url))
    }

    var port: Int { Int(url.split(separator: ":").last ?? "0") ?? 0 }

    /// Freezes the server (SIGSTOP) for `seconds`, then lets it go on: its sockets go silent,
    /// as on a broken network, and clients past their liveness timeout reconnect.
    func freeze(seconds: Double) async throws {
        kill(process.processIdentifier, SIGSTOP)
        try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
        kill(process.processIdentifier, SIGCONT)
    }

    /// Asks the server to stop (SIGTERM), kills it after ten seconds, and reaps it
    /// (`Process.waitUntilExit` may never see it exit here).
    private func terminate() {
        let pid = process.processIdentifier
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<100 where waitpid(pid, &status, WNOHANG) == 0 {
            usleep(100_000)
        }
        if kill(pid, 0) == 0 {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
        }
    }

    func token(subject: String = "tester", organization: String = "acme", ttlSecs: Int = 86400) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Environment.serverProgram)
        process.arguments = ["token", "--data-dir", dataDirectory.path, "--subject", subject,
                             "--organization", organization, "--scopes", "read,write,admin", "--ttl-secs", String(ttlSecs)]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func serviceSecret() throws -> String {
        try String(contentsOf: dataDirectory.appendingPathComponent("secrets/service"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func client(subject: String = "tester", organization: String = "acme") throws -> Client {
        try Client(baseURL: url, token: token(subject: subject, organization: organization), source: "swift-tests")
    }

    func stop() {
        terminate()
        try? FileManager.default.removeItem(at: dataDirectory)
    }
}

/// Closes `connection` after `seconds`, so a read that would hang ends, and the test fails,
/// instead. Cancel the returned task once the reads are done.
func deadline(_ seconds: Double, _ connection: Connection) -> Task<Void, Never> {
    Task {
        try? await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
        if !Task.isCancelled { await connection.close() }
    }
}

/// Reads updates until the session's agent is up; fails fast when it fails.
func untilRunning(_ connection: Connection) async throws {
    while let update = try await connection.next() {
        switch update {
        case let .connected(welcome) where welcome.status == "running":
            return
        case let .event(envelope):
            if case let .statusChanged(changed) = envelope.event {
                XCTAssertNotEqual(changed.status, "failed", "the session failed: \(changed.reason ?? "")")
                if changed.status == "running" || changed.status == "failed" { return }
            }
        default:
            continue
        }
    }
    XCTFail("the connection closed before the session ran")
}

/// Reads events until `done` says so.
func eventsUntil(_ connection: Connection, _ done: (EventEnvelope) -> Bool) async throws -> [EventEnvelope] {
    var read: [EventEnvelope] = []
    while let update = try await connection.next() {
        if case let .event(envelope) = update {
            read.append(envelope)
            if done(envelope) { return read }
        }
    }
    XCTFail("the connection closed early")
    return read
}
