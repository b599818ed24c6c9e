#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Serialization
import Train
import XCTest

/// `unroll train --out DIR` killed with SIGKILL at many points while it replaces an existing model: afterwards
/// DIR must load and be exactly the old model or exactly the new one.
///
/// Runs a handful of kills by default; `UNROLL_LONG_TESTS=1` runs 120.
final class SavedModelKillTests: XCTestCase {
    private var unroll: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("unroll")
    }

    private func files(_ directory: URL) -> [String: Data]? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return nil }
        var result: [String: Data] = [:]
        for name in names { result[name] = try? Data(contentsOf: directory.appendingPathComponent(name)) }
        return result
    }

    /// Whether `folder` holds a hidden entry (the temporaries of a save in progress).
    private func hasTemporary(_ folder: URL) -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).contains { $0.hasPrefix(".") }
    }

    /// Starts `unroll` with `arguments`, its output discarded.
    private func launch(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = unroll
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    func testKilledSavesLeaveExactlyTheOldOrTheNewModel() throws {
        guard FileManager.default.isExecutableFile(atPath: unroll.path) else {
            throw XCTSkip("no unroll executable at \(unroll.path) (build it with 'swift build --build-tests')")
        }
        let isLong = ProcessInfo.processInfo.environment["UNROLL_LONG_TESTS"] == "1"
        let kills = isLong ? 120 : 6
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("unroll-kill-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let csv = folder.appendingPathComponent("ramp.csv")
        try (["t,x,y"] + (0..<60).map { "\($0),\($0 % 5),\(Double($0) * 1.5 + 2)" }).joined(separator: "\n")
            .write(to: csv, atomically: true, encoding: .utf8)
        let common = ["train", csv.path, "--target", "y", "--features", "x", "--past", "6", "--epochs", "1"]
        let oldArguments = common + ["--units", "4", "--seed", "1"]
        let newArguments = common + ["--units", "48", "--future", "2", "--seed", "2"]

        // The two models, each saved by a complete run.
        let reference = folder.appendingPathComponent("reference")
        var expected: [[String: Data]] = []
        for arguments in [oldArguments, newArguments] {
            let process = try launch(arguments + ["--out", reference.path])
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0)
            expected.append(try XCTUnwrap(files(reference)))
            try FileManager.default.removeItem(at: reference)
        }
        XCTAssertNotEqual(expected[0], expected[1])

        var counts = ["old": 0, "new": 0, "broken": 0, "mixed": 0]
        var generator = SystemRandomNumberGenerator()
        let parent = folder.appendingPathComponent("runs")
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        let directory = parent.appendingPathComponent("model")
        for kill in 0..<kills {
            try? FileManager.default.removeItem(at: parent)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for (name, data) in expected[0] { try data.write(to: directory.appendingPathComponent(name)) }

            let process = try launch(newArguments + ["--out", directory.path])
            // Most kills land inside the save: wait until a temporary file or directory appears, then a random
            // 0...4 ms more (a save of this model takes about that long); every fourth kill is at a random
            // moment of the whole run instead.
            if kill % 4 == 3 {
                usleep(UInt32.random(in: 0...400_000, using: &generator))
            } else {
                while process.isRunning, !hasTemporary(parent), !hasTemporary(directory) { usleep(50) }
                usleep(UInt32.random(in: 0...4_000, using: &generator))
            }
            if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()

            let outcome: String
            if (try? Sequential.load(from: directory, additionalFiles: ["preprocessing.json"])) == nil {
                outcome = "broken"
            } else {
                let found = files(resolvedModelDirectory(directory))
                outcome = found == expected[0] ? "old" : found == expected[1] ? "new" : "mixed"
            }
            counts[outcome, default: 0] += 1
        }
        let summary = "\(kills) kills: old \(counts["old"]!), new \(counts["new"]!), broken \(counts["broken"]!), mixed \(counts["mixed"]!)"
        print("SavedModelKillTests: " + summary)
        XCTAssertEqual(counts["broken"], 0, summary)
        XCTAssertEqual(counts["mixed"], 0, summary)
        XCTAssertEqual(counts["old"]! + counts["new"]!, kills, summary)

        // The next save cleans whatever the kills left beside the directory.
        let process = try launch(newArguments + ["--out", directory.path])
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent.path), ["model"])
        XCTAssertEqual(files(directory), expected[1])
    }
}
