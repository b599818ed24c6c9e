import Foundation
import UnrollCLI

var standardOutput = StandardOutput()
exit(CLI.run(Array(CommandLine.arguments.dropFirst()), output: &standardOutput))

/// Writes to the process's standard output.
struct StandardOutput: TextOutputStream {
    mutating func write(_ string: String) { FileHandle.standardOutput.write(Data(string.utf8)) }
}
