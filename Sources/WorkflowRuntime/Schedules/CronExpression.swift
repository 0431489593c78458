/// A cron expression: five fields — minute, hour, day of month, month, day of week — or a macro;
/// or six, with a leading seconds field (`*/10 * * * * *`: every ten seconds).
///
/// Each field is `*`, a value, a range `a-b`, a step `*/n`, `a-b/n` or `a/n` (from `a` to the
/// field's end), or a comma-separated list of those. Months take `jan`…`dec`, days of the week
/// `sun`…`sat` (0 or 7 is Sunday), case-insensitively. Macros: `@hourly`, `@daily` (`@midnight`),
/// `@weekly`, `@monthly`, `@yearly` (`@annually`). As in Vixie cron (and Temporal), when both the
/// day of month and the day of week are restricted, a day matches if either does.
///
/// ```swift
/// let weekdayHours = try CronExpression("0 8-18 * * mon-fri")
/// let next = weekdayHours.nextFire(after: .now, in: TimeZone(identifier: "Australia/Sydney")!)
/// ```
///
/// Pure and `Sendable`: parsing and next-fire computation touch no clock and no database.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    /// The text it was parsed from.
    public let text: String
    let seconds: FieldSet
    let minutes: FieldSet
    let hours: FieldSet
    let daysOfMonth: FieldSet
    let months: FieldSet
    /// 0 (Sunday) to 6.
    let daysOfWeek: FieldSet
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool

    public var description: String { text }

    /// Parses `text`.
    /// - Throws: ``CronExpressionError`` naming the field and the value that is wrong.
    public init(_ text: String) throws(CronExpressionError) {
        self.text = text
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let expanded: String
        if trimmed.hasPrefix("@") {
            guard let macro = Self.macros[trimmed] else {
                throw CronExpressionError(
                    field: "macro", value: trimmed,
                    problem: "is not one of \(Self.macros.keys.sorted().joined(separator: ", "))")
            }
            expanded = macro
        } else {
            expanded = trimmed
        }
        var fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 || fields.count == 6 else {
            throw CronExpressionError(
                field: "expression", value: text,
                problem: "has \(fields.count) field\(fields.count == 1 ? "" : "s"); a cron expression has 5 "
                    + "(minute hour day-of-month month day-of-week), or 6 with seconds first, or is a macro "
                    + "such as @daily")
        }
        var secondValues = FieldSet()
        if fields.count == 6 {
            secondValues = try Field.second.parse(fields.removeFirst())
        } else {
            secondValues.insert(0)
        }
        seconds = secondValues
        minutes = try Field.minute.parse(fields[0])
        hours = try Field.hour.parse(fields[1])
        daysOfMonth = try Field.dayOfMonth.parse(fields[2])
        months = try Field.month.parse(fields[3])
        var weekdays = try Field.dayOfWeek.parse(fields[4])
        if weekdays.contains(7) {
            weekdays.insert(0)
            weekdays.remove(7)
        }
        daysOfWeek = weekdays
        dayOfMonthRestricted = !fields[2].hasPrefix("*")
        dayOfWeekRestricted = !fields[4].hasPrefix("*")
        guard Self.someMonthHasADay(daysOfMonth, months) || dayOfWeekRestricted else {
            throw CronExpressionError(
                field: "day-of-month", value: fields[2],
                problem: "never occurs in month(s) \(fields[3]): the expression would never fire")
        }
    }

    static let macros = [
        "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
        "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
    ]

    /// Whether the wall-clock day matches the day-of-month, month and day-of-week fields.
    func matches(_ day: CivilDate) -> Bool {
        guard months.contains(day.month) else { return false }
        let domMatches = daysOfMonth.contains(day.day)
        let dowMatches = daysOfWeek.contains(day.weekday)
        switch (dayOfMonthRestricted, dayOfWeekRestricted) {
        case (true, true): return domMatches || dowMatches
        case (true, false): return domMatches
        case (false, true): return dowMatches
        case (false, false): return true
        }
    }

    /// Whether the expression matches a wall-clock minute (its day, hour and minute).
    func matches(_ day: CivilDate, hour: Int, minute: Int) -> Bool {
        matches(day) && hours.contains(hour) && minutes.contains(minute)
    }

    private static func someMonthHasADay(_ days: FieldSet, _ months: FieldSet) -> Bool {
        let longest = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return (1...12).contains { month in
            months.contains(month) && (1...longest[month]).contains(where: days.contains)
        }
    }
}

/// A cron expression that does not parse, naming the field and the value that is wrong.
public struct CronExpressionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `second`, `minute`, `hour`, `day-of-month`, `month`, `day-of-week`, `macro` or `expression`.
    public var field: String
    public var value: String
    public var problem: String

    public var description: String { "the cron \(field) field '\(value)' \(problem)" }
}

/// The values one field allows, as bits.
struct FieldSet: Sendable, Hashable {
    private(set) var bits: UInt64 = 0

    func contains(_ value: Int) -> Bool { value >= 0 && value < 64 && bits & (1 << UInt64(value)) != 0 }
    mutating func insert(_ value: Int) { bits |= 1 << UInt64(value) }
    mutating func remove(_ value: Int) { bits &= ~(1 << UInt64(value)) }

    /// The allowed values in `range`, ascending.
    func values(in range: ClosedRange<Int>) -> [Int] { range.filter(contains) }
}

/// One of the five fields: its name, range and value names.
struct Field {
    let name: String
    let range: ClosedRange<Int>
    let names: [String: Int]

    static let second = Field(name: "second", range: 0...59, names: [:])
    static let minute = Field(name: "minute", range: 0...59, names: [:])
    static let hour = Field(name: "hour", range: 0...23, names: [:])
    static let dayOfMonth = Field(name: "day-of-month", range: 1...31, names: [:])
    static let month = Field(
        name: "month", range: 1...12,
        names: Dictionary(
            uniqueKeysWithValues: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
                .enumerated().map { ($1, $0 + 1) }))
    static let dayOfWeek = Field(
        name: "day-of-week", range: 0...7,
        names: Dictionary(
            uniqueKeysWithValues: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"].enumerated().map { ($1, $0) }))

    func parse(_ text: String) throws(CronExpressionError) -> FieldSet {
        var set = FieldSet()
        for part in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            try add(part, to: &set, whole: text)
        }
        return set
    }

    private func add(_ part: String, to set: inout FieldSet, whole: String) throws(CronExpressionError) {
        guard !part.isEmpty else { throw error(whole, "has an empty list item") }
        let pieces = part.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard pieces.count <= 2 else { throw error(part, "has more than one '/'") }
        var step = 1
        if pieces.count == 2 {
            guard let parsed = Int(pieces[1]), parsed > 0 else {
                throw error(part, "has a step '\(pieces[1])' that is not a whole number above 0")
            }
            step = parsed
        }
        let bounds: ClosedRange<Int>
        if pieces[0] == "*" {
            bounds = range
        } else if let dash = pieces[0].firstIndex(of: "-") {
            let low = try value(String(pieces[0][..<dash]), in: part)
            let high = try value(String(pieces[0][pieces[0].index(after: dash)...]), in: part)
            guard low <= high else { throw error(part, "is a range from \(low) down to \(high); write it low-high") }
            bounds = low...high
        } else {
            let single = try value(pieces[0], in: part)
            bounds = pieces.count == 2 ? single...range.upperBound : single...single
        }
        for value in stride(from: bounds.lowerBound, through: bounds.upperBound, by: step) { set.insert(value) }
    }

    private func value(_ text: String, in part: String) throws(CronExpressionError) -> Int {
        guard let value = Int(text) ?? names[text] else {
            let known =
                names.isEmpty
                ? "" : " or a name (\(names.sorted { $0.value < $1.value }.map(\.key).joined(separator: ", ")))"
            throw error(part, "holds '\(text)', which is not a number\(known)")
        }
        guard range.contains(value) else {
            throw error(part, "holds \(value), outside \(range.lowerBound)-\(range.upperBound)")
        }
        return value
    }

    private func error(_ value: String, _ problem: String) -> CronExpressionError {
        CronExpressionError(field: name, value: value, problem: problem)
    }
}
