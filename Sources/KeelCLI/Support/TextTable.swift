import Foundation
import WorkflowRuntime

/// A plain-text table with aligned columns, for human-readable CLI output. Cells are shown with
/// control characters escaped (``NameRules/escapingControls(_:)``): stored text never reaches the
/// terminal as escape sequences or extra lines.
package struct TextTable {
    var headers: [String]
    var rows: [[String]] = []

    package init(_ headers: String...) {
        self.headers = headers
    }

    package mutating func add(_ cells: String...) {
        rows.append(cells.map(NameRules.escapingControls))
    }

    package func render() -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }
}

package enum Formatting {
    package static func time(_ date: Date?) -> String {
        guard let date else { return "-" }
        return date.formatted(
            .iso8601.year().month().day().time(includingFractionalSeconds: false).dateTimeSeparator(.space))
    }

    package static func abbreviate(_ text: String, to length: Int = 60) -> String {
        text.count > length ? String(text.prefix(length - 1)) + "…" : text
    }
}
