import Graph

/// A layer setting outside the range the layer can run with (`LSTM(hiddenSize: 0)`, `Dropout(rate: 1)`).
///
/// Initializers do not throw: they keep the settings, and `Sequential.compile` reads ``Layer/invalidSettings``
/// and throws before anything is built. A layer used directly, without a model, traps at its first use with
/// the same sentence.
public struct SettingError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The layer's kind (`"LSTM"`).
    public let layer: String
    /// The setting's name as the initializer spells it (`"hiddenSize"`).
    public let setting: String
    /// The value given.
    public let value: String
    /// What the setting must be (`"must be positive"`).
    public let requirement: String

    /// Creates a setting error.
    public init(layer: String, setting: String, value: String, requirement: String) {
        self.layer = layer
        self.setting = setting
        self.value = value
        self.requirement = requirement
    }

    /// A sentence naming the layer, the setting, its value and what it must be.
    public var description: String { "\(layer): \(setting) = \(value) is invalid: it \(requirement)" }

    /// Returns an error for `setting` unless `isValid`.
    static func unless(_ isValid: Bool, _ layer: String, _ setting: String, _ value: Any, _ requirement: String)
        -> [SettingError] {
        isValid ? [] : [SettingError(layer: layer, setting: setting, value: "\(value)", requirement: requirement)]
    }
}

/// Traps with the first error's sentence, if any: the direct-use half of the settings rule.
func checkSettings(_ errors: [SettingError]) {
    if let first = errors.first { checkFailed(first.description) }
}
