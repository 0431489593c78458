/// Rules for the names callers choose — workflow ids, signal names and request ids, deciders'
/// names and roles — and a safe way to show any stored text on a terminal.
///
/// A name must not be empty or only whitespace, and must not hold characters a terminal
/// interprets: C0 and C1 controls (escape sequences, newlines, tabs), line and paragraph
/// separators, and bidirectional overrides (which can make one id look like another).
public enum NameRules {
    /// The longest name accepted, in characters.
    public static let maximumLength = 1000

    /// Checks a caller-chosen name.
    /// - Parameter what: what the name is, for the message (e.g. "the workflow id").
    /// - Throws: ``KeelError`` `.invalidArgument` saying what is wrong with it.
    public static func check(_ value: String, as what: String) throws {
        if value.allSatisfy(\.isWhitespace) {
            throw KeelError(.invalidArgument, "\(what) must not be empty or only whitespace")
        }
        if let control = value.unicodeScalars.first(where: isTerminalControl) {
            throw KeelError(
                .invalidArgument,
                "\(what) '\(escapingControls(value))' holds the control character "
                    + "\(escape(control)); use printable characters only")
        }
        if value.count > maximumLength {
            throw KeelError(
                .invalidArgument, "\(what) is \(value.count) characters long; the limit is \(maximumLength)")
        }
    }

    /// `text` with every character a terminal would interpret shown as an escape (`\u{1B}`), so
    /// tables and messages print stored values as they are, never as terminal commands.
    public static func escapingControls(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isTerminalControl) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            if isTerminalControl(scalar) { result += escape(scalar) } else { result.unicodeScalars.append(scalar) }
        }
        return result
    }

    static func isTerminalControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true  // C0, DEL, C1
        case 0x2028, 0x2029: true  // line and paragraph separators
        case 0x202A...0x202E, 0x2066...0x2069: true  // bidirectional embeddings, overrides, isolates
        default: false
        }
    }

    private static func escape(_ scalar: Unicode.Scalar) -> String {
        "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
    }
}
