// Every golden fixture decodes (or fails) in Swift exactly as the protocol says.

import Foundation
import XCTest

@testable import Proliferate

final class ProtocolTests: XCTestCase {
    struct Fixture {
        let name: String
        let decodeAs: String
        let json: Any
        let text: String
        let errorContains: String?
    }

    func fixtures(_ kind: String) throws -> [Fixture] {
        let folder = Environment.repository.appendingPathComponent("fixtures/protocol/v1/\(kind)")
        return try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".json") }.sorted()
            .map { name in
                let data = try Data(contentsOf: folder.appendingPathComponent(name))
                let document = try JSONSerialization.jsonObject(with: data) as! [String: Any]
                let json = document["json"]!
                let text = String(decoding: try JSONSerialization.data(withJSONObject: json, options: [.fragmentsAllowed]), as: UTF8.self)
                return Fixture(name: name, decodeAs: document["decode_as"] as! String, json: json, text: text,
                               errorContains: document["error_contains"] as? String)
            }
    }

    func testValidFixturesRoundTripUnchanged() throws {
        let valid = try fixtures("valid")
        XCTAssertGreaterThanOrEqual(valid.count, 50)
        for fixture in valid {
            let normalized = try normalize(typeName: fixture.decodeAs, json: fixture.text)
            let decoded = try JSONSerialization.jsonObject(with: Data(normalized.utf8), options: [.fragmentsAllowed])
            XCTAssertEqual(decoded as? NSObject, fixture.json as? NSObject, fixture.name)
        }
    }

    func testEventFramesDecodeToTypedEvents() throws {
        let frames = try fixtures("valid").filter { fixture in
            fixture.decodeAs == "ServerFrame" && (fixture.json as? [String: Any])?["type"] as? String == "event"
        }
        XCTAssertGreaterThanOrEqual(frames.count, 23)
        for fixture in frames {
            let envelope = try decodeEventEnvelope(json: fixture.text)
            let wireType = ((fixture.json as! [String: Any])["event"] as! [String: Any])["type"] as! String
            XCTAssertEqual(envelope.eventType, wireType, fixture.name)
            if case let .unknown(typeName, json) = envelope.event {
                XCTAssertEqual(typeName, wireType)
                XCTAssertTrue(json.contains(wireType), fixture.name)
            } else {
                XCTAssertNotEqual(envelope.eventType, "", fixture.name)
            }
        }
        let delta = try decodeEventEnvelope(json: frames.first { $0.text.contains("\"text_delta\"") }!.text)
        guard case let .textDelta(payload) = delta.event else { return XCTFail("a text_delta decodes to .textDelta") }
        XCTAssertFalse(payload.delta.isEmpty)
    }

    func testInvalidFixturesFailNamingTheProblem() throws {
        let invalid = try fixtures("invalid")
        XCTAssertGreaterThanOrEqual(invalid.count, 10)
        for fixture in invalid {
            XCTAssertThrowsError(try normalize(typeName: fixture.decodeAs, json: fixture.text), fixture.name) { error in
                guard let error = error as? ProliferateError else { return XCTFail("\(error)") }
                XCTAssertEqual(error.code, "bad_request", fixture.name)
                XCTAssertTrue("\(error)".contains(fixture.errorContains!), "\(fixture.name): \(error)")
            }
        }
    }

    func testUnknownTypeNamesAreRefused() {
        XCTAssertThrowsError(try normalize(typeName: "Nonsense", json: "{}")) { error in
            XCTAssertEqual((error as? ProliferateError)?.code, "bad_request")
        }
    }

    func testGeneratedRecordsMatchTheSchema() throws {
        let codegen = URL(fileURLWithPath: Environment.serverProgram)
            .deletingLastPathComponent().appendingPathComponent("proliferate-codegen")
        let process = Process()
        process.executableURL = codegen
        process.arguments = ["--check"]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let report = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, report)
    }
}
