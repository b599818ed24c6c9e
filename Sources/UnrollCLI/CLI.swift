import Foundation
import Train

/// The `unroll` command-line tool, as a library so tests can run it in-process.
///
/// With no arguments (or only flags) it runs the default job, ``ForecastCommand``; otherwise the first
/// argument names a subcommand: `forecast`, `train`, `predict`, `summary`, `graph`, `textgen`, `addition`, `quarterly`, `gradient-flow`, `bench`.
public enum CLI {
    /// The subcommands, in the order the help lists them.
    static var subcommands: [any Subcommand.Type] {
        [ForecastCommand.self, TrainCommand.self, PredictCommand.self, SummaryCommand.self, GraphCommand.self,
         TextGenerationCommand.self, AdditionCommand.self, QuarterlyCommand.self, GradientFlowCommand.self, BenchCommand.self]
    }

    /// Runs the tool with `arguments` (without the program name), writing to `output`; returns the exit status.
    ///
    /// Errors go to `output` too, as one line starting `error: `. The status is 0 on success, 2 for a usage
    /// mistake (unknown subcommand or flag, bad value) and 1 when the work itself failed (unreadable file,
    /// bad data).
    public static func run(_ arguments: [String], output: inout some TextOutputStream) -> Int32 {
        do {
            try dispatch(arguments, output: &output)
            return 0
        } catch let error as UsageError {
            print("error: \(error.message)", to: &output)
            print("Run '\(error.command) --help' for usage.", to: &output)
            return 2
        } catch {
            print("error: \(error)", to: &output)
            return 1
        }
    }

    private static func dispatch(_ arguments: [String], output: inout some TextOutputStream) throws {
        let first = arguments.first ?? ""
        if first == "--help" || first == "-h" || first == "help" {
            if first == "help", arguments.count > 1 {
                try dispatch([arguments[1], "--help"], output: &output)
            } else {
                print(help, terminator: "", to: &output)
            }
        } else if first.isEmpty || first.hasPrefix("-") {
            try runSubcommand(ForecastCommand.self, arguments, command: "unroll", output: &output)
        } else if let subcommand = subcommands.first(where: { $0.name == first }) {
            try runSubcommand(subcommand, Array(arguments.dropFirst()), command: "unroll \(first)", output: &output)
        } else {
            throw UsageError("unknown subcommand '\(first)'; available: \(subcommands.map { $0.name }.joined(separator: ", "))",
                             command: "unroll")
        }
    }

    private static func runSubcommand(_ subcommand: any Subcommand.Type, _ arguments: [String], command: String,
                                      output: inout some TextOutputStream) throws {
        let options = subcommand.options + [.flag("help", "Show this help.")]
        let parsed = try Arguments(arguments, command: command, options: options)
        if parsed.isSet("help") {
            let text = helpText(usage: "\(command) \(subcommand.usage)", abstract: subcommand.abstract,
                                discussion: subcommand.discussion, options: options)
            print(text, terminator: "", to: &output)
        } else {
            try subcommand.run(parsed, output: &output)
        }
    }

    /// The top-level help.
    static var help: String {
        var lines = [
            "USAGE: unroll [SUBCOMMAND] [OPTIONS]",
            "",
            "Unroll: recurrent networks in Swift. With no subcommand, runs the default job (forecast).",
            "",
            "SUBCOMMANDS:",
        ]
        let width = (subcommands.map { $0.name.count }.max() ?? 0) + 2
        for subcommand in subcommands {
            lines.append("  " + subcommand.name + String(repeating: " ", count: width - subcommand.name.count)
                         + subcommand.abstract)
        }
        lines += ["", "Run 'unroll SUBCOMMAND --help' for a subcommand's options."]
        return lines.joined(separator: "\n") + "\n"
    }
}

/// One subcommand of the tool: its name, help and body.
protocol Subcommand {
    /// The word that selects it (`"train"`).
    static var name: String { get }
    /// One line for the top-level help.
    static var abstract: String { get }
    /// The arguments part of the usage line (`"FILE.csv --target NAME [OPTIONS]"`).
    static var usage: String { get }
    /// More explanation for the subcommand's help (may be empty).
    static var discussion: String { get }
    /// The options it accepts (`--help` is added for every subcommand).
    static var options: [OptionSpecification] { get }
    /// Runs it, writing to `output`.
    static func run(_ arguments: Arguments, output: inout some TextOutputStream) throws
}

extension Subcommand {
    static var discussion: String { "" }
}
