import Foundation

/// A mistake in how the tool was called: an unknown subcommand or flag, a missing or malformed value.
///
/// The message names the flag, the value given and what was expected; the tool prints it after `error: `
/// with a pointer to the subcommand's `--help`, and exits with status 2.
public struct UsageError: Error, Equatable, CustomStringConvertible {
    /// What was wrong, as a sentence.
    public let message: String
    /// The command whose help explains the right usage (`"unroll train"`).
    public let command: String

    /// Creates a usage error for `command`.
    public init(_ message: String, command: String) {
        self.message = message
        self.command = command
    }

    /// The message.
    public var description: String { message }
}

/// One flag a subcommand accepts, as its help lists it.
struct OptionSpecification {
    /// The long name without dashes (`"epochs"`).
    let name: String
    /// The placeholder shown in help (`"N"`), or `nil` for a flag that takes no value.
    let valueName: String?
    /// What it does, and its default.
    let help: String

    /// An option taking a value.
    static func option(_ name: String, _ valueName: String, _ help: String) -> OptionSpecification {
        OptionSpecification(name: name, valueName: valueName, help: help)
    }

    /// A flag that is either present or not.
    static func flag(_ name: String, _ help: String) -> OptionSpecification {
        OptionSpecification(name: name, valueName: nil, help: help)
    }
}

/// The parsed command line of one subcommand: `--name value`, `--name=value`, bare `--flag`s, and positional
/// arguments (`--` ends the flags). Typed accessors check each value and say what was expected.
///
/// Hand-written rather than a package so the tool has no dependencies.
struct Arguments {
    /// The command these arguments belong to (`"unroll train"`), for error messages.
    let command: String
    /// Arguments that are not flags, in order.
    private(set) var positionals: [String] = []
    private var values: [String: String] = [:]
    private var flags: Set<String> = []

    /// Parses `arguments` against the options `command` accepts.
    ///
    /// - Throws: ``UsageError`` for an unknown flag, an option without its value, a value given to a flag,
    ///   or an option given twice.
    init(_ arguments: [String], command: String, options: [OptionSpecification]) throws {
        self.command = command
        let known = Dictionary(options.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var index = 0
        var onlyPositionals = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if onlyPositionals || !argument.hasPrefix("-") || argument == "-" || Double(argument) != nil {
                positionals.append(argument)
                continue
            }
            if argument == "--" {
                onlyPositionals = true
                continue
            }
            var name = String(argument.drop(while: { $0 == "-" }))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if argument == "-h" { name = "help" }
            guard let specification = known[name] else {
                let accepted = options.map { "--\($0.name)" }.joined(separator: ", ")
                throw UsageError("unknown option '\(argument)' for '\(command)'; it accepts \(accepted)", command: command)
            }
            guard values[name] == nil && !flags.contains(name) else {
                throw UsageError("option '--\(name)' is given more than once", command: command)
            }
            guard let valueName = specification.valueName else {
                guard inlineValue == nil else {
                    throw UsageError("flag '--\(name)' takes no value, got '\(inlineValue!)'", command: command)
                }
                flags.insert(name)
                continue
            }
            if let inlineValue {
                values[name] = inlineValue
            } else if index < arguments.count, !arguments[index].hasPrefix("--") {
                values[name] = arguments[index]
                index += 1
            } else {
                throw UsageError("option '--\(name)' needs a value (\(valueName))", command: command)
            }
        }
    }

    /// Whether a flag (or an option) was given.
    func isSet(_ name: String) -> Bool { flags.contains(name) || values[name] != nil }

    /// The raw text given to an option, if any.
    func string(_ name: String) -> String? { values[name] }

    /// The text given to an option, which must be there.
    func requiredString(_ name: String, _ valueName: String) throws -> String {
        guard let value = values[name] else {
            throw UsageError("option '--\(name) \(valueName)' is required", command: command)
        }
        return value
    }

    /// A whole number in `range`, or `defaultValue` when the option is absent.
    func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let text = values[name] else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw UsageError("option '--\(name)' expects a whole number \(describe(range)), got '\(text)'", command: command)
        }
        return value
    }

    /// An unsigned 64-bit number (a seed), or `defaultValue` when the option is absent.
    func seed(_ name: String, default defaultValue: UInt64) throws -> UInt64 {
        guard let text = values[name] else { return defaultValue }
        guard let value = UInt64(text) else {
            throw UsageError("option '--\(name)' expects a non-negative whole number, got '\(text)'", command: command)
        }
        return value
    }

    /// A finite number in `range`, or `defaultValue` when the option is absent.
    ///
    /// - Parameter isOpenBelow: whether the lower bound itself is excluded (a learning rate must exceed 0).
    func number<Number: BinaryFloatingPoint & LosslessStringConvertible>(
        _ name: String, default defaultValue: Number, in range: ClosedRange<Number>, isOpenBelow: Bool = false
    ) throws -> Number {
        guard let text = values[name] else { return defaultValue }
        guard let value = Number(text), value.isFinite, range.contains(value),
              !(isOpenBelow && value == range.lowerBound) else {
            let lower = isOpenBelow ? "above \(range.lowerBound)" : "at least \(range.lowerBound)"
            let bounds = range.upperBound == .greatestFiniteMagnitude ? lower : "\(lower) and at most \(range.upperBound)"
            throw UsageError("option '--\(name)' expects a number \(bounds), got '\(text)'", command: command)
        }
        return value
    }

    /// One of `choices`, or `defaultValue` when the option is absent.
    func choice(_ name: String, from choices: [String], default defaultValue: String) throws -> String {
        guard let text = values[name] else { return defaultValue }
        guard choices.contains(text) else {
            throw UsageError("option '--\(name)' expects one of \(choices.joined(separator: ", ")), got '\(text)'",
                             command: command)
        }
        return text
    }

    /// A comma-separated list of non-empty names, or `nil` when the option is absent.
    func list(_ name: String) throws -> [String]? {
        guard let text = values[name] else { return nil }
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard !items.contains(where: \.isEmpty) else {
            throw UsageError("option '--\(name)' expects comma-separated names such as 'a,b', got '\(text)'",
                             command: command)
        }
        return items
    }

    /// Checks the number of positional arguments.
    func expectPositionals(_ range: ClosedRange<Int>, describing what: String) throws {
        guard range.contains(positionals.count) else {
            let given = positionals.isEmpty ? "none" : positionals.map { "'\($0)'" }.joined(separator: " ")
            throw UsageError("'\(command)' expects \(what), got \(given)", command: command)
        }
    }

    private func describe(_ range: ClosedRange<Int>) -> String {
        range.upperBound == .max ? "of at least \(range.lowerBound)" : "from \(range.lowerBound) to \(range.upperBound)"
    }
}

/// Returns a subcommand's help: usage line, description and its options, aligned.
func helpText(usage: String, abstract: String, discussion: String = "", options: [OptionSpecification]) -> String {
    var lines = ["USAGE: \(usage)", "", abstract]
    if !discussion.isEmpty { lines += ["", discussion] }
    lines += ["", "OPTIONS:"]
    let entries = options.map { ("--\($0.name)" + ($0.valueName.map { " \($0)" } ?? ""), $0.help) }
    let width = (entries.map(\.0.count).max() ?? 0) + 2
    for (flag, help) in entries {
        lines.append("  " + flag + String(repeating: " ", count: width - flag.count) + help)
    }
    return lines.joined(separator: "\n") + "\n"
}
