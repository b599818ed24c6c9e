import Foundation
import TestSupport
import XCTest

/// The checking helper keeps its message under `-O`, where `precondition` loses it, and no source file of the
/// package goes back to `precondition`.
final class CheckTests: XCTestCase {
    /// Compiles `Sources/Graph/Check.swift` with a tiny `main` under `-O` and runs it once with `check` and once
    /// with `precondition`: only the first may (and must) print the message. The second half shows that the
    /// probe can tell the difference, so the first half would fail if `check` lost its message.
    func testMessageSurvivesReleaseBuild() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("unroll-check-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let main = folder.appendingPathComponent("main.swift")
        try """
        let condition = CommandLine.arguments.count > 5
        if CommandLine.arguments[1] == "check" {
            check(condition, "probe: the message survives -O")
        } else {
            precondition(condition, "probe: the message survives -O")
        }
        """.write(to: main, atomically: true, encoding: .utf8)
        let helper = Fixture.packageRoot.appendingPathComponent("Sources/Graph/Check.swift")
        let probe = folder.appendingPathComponent("probe")
        let compile = try run("/usr/bin/env", ["swiftc", "-O", "-package-name", "unroll", "-module-name", "Probe",
                                               helper.path, main.path, "-o", probe.path])
        XCTAssertEqual(compile.status, 0, "swiftc failed: \(compile.output)")

        let checked = try run(probe.path, ["check"])
        XCTAssertNotEqual(checked.status, 0)
        XCTAssertTrue(checked.output.contains("probe: the message survives -O"), checked.output)
        let plain = try run(probe.path, ["precondition"])
        XCTAssertNotEqual(plain.status, 0)
        XCTAssertFalse(plain.output.contains("probe: the message survives -O"), plain.output)
    }

    /// Every programmer-error check in `Sources` goes through `check`, whose message survives `-O`.
    func testSourcesUseTheCheckingHelper() throws {
        let sources = Fixture.packageRoot.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(atPath: sources.path)!.compactMap { $0 as? String }
            .filter { $0.hasSuffix(".swift") }
        XCTAssertGreaterThan(files.count, 50)
        var offenders = [String]()
        for file in files {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where line.contains("precondition(") || line.contains("preconditionFailure(") {
                offenders.append("\(file):\(number + 1)")
            }
        }
        XCTAssertEqual(offenders, [], "use check(_:_:) or checkFailed(_:) so the message survives -O")
    }

    private func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
