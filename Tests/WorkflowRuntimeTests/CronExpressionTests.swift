import Foundation
import PropertyBased
import Testing
import WorkflowRuntime

private let utc = TimeZone(identifier: "UTC")!
private let sydney = TimeZone(identifier: "Australia/Sydney")!
private let newYork = TimeZone(identifier: "America/New_York")!

private func instant(_ text: String) -> Date {
    try! Date(text, strategy: .iso8601)
}

/// The wall-clock fields of `date` in `zone`.
private func wall(_ date: Date, in zone: TimeZone) -> DateComponents {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = zone
    return calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
}

@Suite("Cron expressions: parsing, next fire times, daylight saving")
struct CronExpressionTests {
    @Test("fields, ranges, steps, lists, names and macros parse to the times they mean")
    func parsing() throws {
        let start = instant("2027-01-01T00:00:00Z")
        func fires(_ text: String, _ count: Int = 4) throws -> [String] {
            try CronExpression(text).nextFires(count, after: start, in: utc).map { $0.formatted(.iso8601) }
        }
        #expect(try fires("*/20 * * * *") == ["2027-01-01T00:20:00Z", "2027-01-01T00:40:00Z", "2027-01-01T01:00:00Z",
                                               "2027-01-01T01:20:00Z"])
        #expect(try fires("5,10-12 3 * * *") == ["2027-01-01T03:05:00Z", "2027-01-01T03:10:00Z", "2027-01-01T03:11:00Z",
                                                  "2027-01-01T03:12:00Z"])
        #expect(try fires("0 9 * * MON-fri", 3) == ["2027-01-01T09:00:00Z", "2027-01-04T09:00:00Z", "2027-01-05T09:00:00Z"])
        #expect(try fires("0 0 1 jan,Jul *", 2) == ["2027-07-01T00:00:00Z", "2028-01-01T00:00:00Z"])
        #expect(try fires("0 0 * * 7", 1) == ["2027-01-03T00:00:00Z"], "7 is Sunday")
        #expect(try fires("0 12 10-20/5 * *", 3) == ["2027-01-10T12:00:00Z", "2027-01-15T12:00:00Z", "2027-01-20T12:00:00Z"])
        #expect(try fires("30 22/1 * * *", 3) == ["2027-01-01T22:30:00Z", "2027-01-01T23:30:00Z", "2027-01-02T22:30:00Z"])
        // Day of month and day of week both restricted: either matches (Vixie cron, Temporal).
        // (1 January 2027 is a Friday, but a fire is strictly after the start.)
        #expect(try fires("0 0 13 * fri", 3) == ["2027-01-08T00:00:00Z", "2027-01-13T00:00:00Z", "2027-01-15T00:00:00Z"])
        #expect(try fires("0 0 29 2 *", 2) == ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"])
        // Six fields: seconds first.
        #expect(try fires("*/20 * * * * *", 3) == ["2027-01-01T00:00:20Z", "2027-01-01T00:00:40Z", "2027-01-01T00:01:00Z"])
        #expect(try fires("15 30 9 * * *", 1) == ["2027-01-01T09:30:15Z"])
        for (macro, spec) in [("@hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"),
                              ("@weekly", "0 0 * * 0"), ("@monthly", "0 0 1 * *"), ("@yearly", "0 0 1 1 *"),
                              ("@annually", "0 0 1 1 *")] {
            #expect(try fires(macro, 3) == fires(spec, 3), "\(macro)")
        }
    }

    @Test("an invalid expression names the field and the value", arguments: [
        ("* * * *", "expression", "has 4 fields"),
        ("60 * * * *", "minute", "holds 60, outside 0-59"),
        ("61 * * * * *", "second", "outside 0-59"),
        ("* * * * * * *", "expression", "has 7 fields"),
        ("* 24 * * *", "hour", "outside 0-23"),
        ("* * 0 * *", "day-of-month", "outside 1-31"),
        ("* * * 13 *", "month", "outside 1-12"),
        ("* * * * 8", "day-of-week", "outside 0-7"),
        ("* * * smarch *", "month", "'smarch', which is not a number or a name (jan,"),
        ("*/0 * * * *", "minute", "step '0'"),
        ("10-5 * * * *", "minute", "from 10 down to 5"),
        ("1,,2 * * * *", "minute", "empty list item"),
        ("0 0 30 2 *", "day-of-month", "never occurs"),
        ("@fortnightly", "macro", "is not one of @annually"),
        ("1/2/3 * * * *", "minute", "more than one '/'"),
    ])
    func invalid(text: String, field: String, problem: String) {
        do {
            _ = try CronExpression(text)
            Issue.record("'\(text)' parsed")
        } catch {
            #expect(error.field == field, "\(error)")
            #expect(error.description.contains(problem), "\(error)")
        }
    }

    /// The issue's four schedules, fired over the whole of 2027, across both Sydney changes
    /// (daylight saving ends Sunday 4 April at 3:00, starts Sunday 3 October at 2:00).
    @Test("the four schedules fire at exactly the right instants over a year, daylight saving included")
    func businessSchedulesOverAYear() throws {
        let start = instant("2026-12-31T12:59:59Z")  // just before 2027-01-01 00:00 in Sydney
        let end = instant("2027-12-31T13:00:00Z")
        func year(_ text: String, _ zone: TimeZone) throws -> [Date] {
            try CronExpression(text).nextFires(20_000, after: start, in: zone).filter { $0 < end }
        }
        // Enrichment at 2 AM Sydney every day: 365 fires, one a day.
        let enrichment = try year("0 2 * * *", sydney)
        #expect(enrichment.count == 365)
        #expect(Set(enrichment.map { wall($0, in: sydney).day! * 100 + wall($0, in: sydney).month! }).count == 365)
        // 4 April: 2:00 happens twice (AEDT, then AEST): once, at the first.
        #expect(enrichment.contains(instant("2027-04-03T15:00:00Z")))
        #expect(!enrichment.contains(instant("2027-04-03T16:00:00Z")))
        // 3 October: 2:00 does not exist (clocks jump to 3:00): once, at 3:00 AEDT.
        #expect(enrichment.contains(instant("2027-10-02T16:00:00Z")))
        #expect(enrichment.filter { wall($0, in: sydney).hour != 2 }.map { $0.formatted(.iso8601) }
                == ["2027-10-02T16:00:00Z"])

        // Outreach every hour 8 AM-6 PM on weekdays, Sydney: 11 a day, always on the local hour.
        let outreach = try year("0 8-18 * * mon-fri", sydney)
        #expect(outreach.count == 261 * 11)
        #expect(outreach.allSatisfy {
            let local = wall($0, in: sydney)
            return (8...18).contains(local.hour!) && local.minute == 0 && (2...6).contains(local.weekday!)
        })
        // Reply recovery every six hours (Sydney): 0, 6, 12 and 18 o'clock never fall in a gap or
        // an overlap, so four a day, every day of the year.
        let recovery = try year("0 */6 * * *", sydney)
        #expect(recovery.count == 365 * 4)
        // Stall check at 10 AM UTC: every day at 10:00:00Z.
        let stall = try year("0 10 * * *", utc)
        #expect(stall.count == 365)
        #expect(stall.allSatisfy { wall($0, in: utc).hour == 10 && wall($0, in: utc).minute == 0 })
        for fires in [enrichment, outreach, recovery, stall] {
            #expect(zip(fires, fires.dropFirst()).allSatisfy { $0 < $1 })
        }
    }

    @Test("every tick inside a spring-forward gap fires once, at the first instant after it; the overlap's once")
    func dstEdges() throws {
        // New York, 14 March 2027: 2:00 EST jumps to 3:00 EDT (07:00Z); 7 November: 2:00 EDT back to 1:00 EST.
        let quarterly = try CronExpression("*/15 * * * *")
        let spring = quarterly.nextFires(6, after: instant("2027-03-14T06:40:00Z"), in: newYork)
        #expect(spring.map { $0.formatted(.iso8601) } == [
            "2027-03-14T06:45:00Z",  // 1:45 EST
            "2027-03-14T07:00:00Z",  // 2:00-2:45 do not exist, and 3:00 EDT is the same instant: once
            "2027-03-14T07:15:00Z", "2027-03-14T07:30:00Z", "2027-03-14T07:45:00Z", "2027-03-14T08:00:00Z",
        ])
        let halfPastOne = try CronExpression("30 1 * * *")
        let fall = halfPastOne.nextFires(2, after: instant("2027-11-07T04:00:00Z"), in: newYork)
        #expect(fall.map { $0.formatted(.iso8601) } == ["2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z"],
                "1:30 EDT, not 1:30 EST an hour later")
        // Asked from inside the repeated hour, it waits for the next day.
        #expect(halfPastOne.nextFire(after: instant("2027-11-07T06:10:00Z"), in: newYork)
                == instant("2027-11-08T06:30:00Z"))
    }

    // MARK: Properties

    /// A cron field built from parts — `*`, a value, a range, a step, a list — so the checks
    /// cover every syntax.
    static func field(_ range: ClosedRange<Int>) -> Generator<String, Shrink.Tuple<(Int, Int, Int, Int)>> {
        let span = range.upperBound - range.lowerBound
        return zip(Gen.int(in: 0...4), Gen.int(in: range), Gen.int(in: 0...span), Gen.int(in: 1...max(1, span / 2)))
            .map { shape, low, width, step in
                let high = min(low + width, range.upperBound)
                switch shape {
                case 0: return "*"
                case 1: return "\(low)"
                case 2: return "\(low)-\(high)"
                case 3: return "*/\(step)"
                default: return "\(low),\(high)"
                }
            }
    }

    static let startSeconds = Gen.int(in: 1_798_761_600...1_830_297_600)  // 2027 to 2028

    @Test("next fire times are strictly increasing and each matches the expression's wall-clock minute")
    func increasingAndMatching() async {
        await propertyCheck(
            count: 150, input: Self.field(0...59), Self.field(0...23), Self.field(1...28), Self.field(1...12),
            Self.field(0...6), Self.startSeconds
        ) { minute, hour, day, month, weekday, seconds in
            let text = "\(minute) \(hour) \(day) \(month) \(weekday)"
            // The generator builds valid fields only: a refusal is a parser bug.
            guard let cron = try? CronExpression(text) else {
                Issue.record("'\(text)' did not parse")
                return
            }
            for zone in [utc, sydney, newYork] {
                let fires = cron.nextFires(12, after: Date(timeIntervalSince1970: Double(seconds)), in: zone)
                #expect(!fires.isEmpty, "\(text)")
                #expect(zip(fires, fires.dropFirst()).allSatisfy { $0 < $1 }, "\(text) in \(zone.identifier)")
                for fire in fires {
                    let local = wall(fire, in: zone)
                    #expect(local.second == 0)
                    // A fire off its wall time is the end of a gap, where the clock changed.
                    let shifted = zone.secondsFromGMT(for: fire) != zone.secondsFromGMT(for: fire.addingTimeInterval(-1))
                    #expect(shifted || Self.matches(text, local), "\(text) fired at \(fire) in \(zone.identifier)")
                }
            }
        }
    }

    @Test("no matching minute is skipped between two fire times (UTC, checked minute by minute)")
    func noneSkipped() async {
        await propertyCheck(
            count: 40, input: Self.field(0...59), Self.field(0...23), Self.field(1...28), Self.field(1...12),
            Self.field(0...6), Self.startSeconds
        ) { minute, hour, day, month, weekday, seconds in
            let text = "\(minute) \(hour) \(day) \(month) \(weekday)"
            // The generator builds valid fields only: a refusal is a parser bug.
            guard let cron = try? CronExpression(text) else {
                Issue.record("'\(text)' did not parse")
                return
            }
            var cursor = Date(timeIntervalSince1970: Double(seconds))
            for _ in 0..<3 {
                guard let next = cron.nextFire(after: cursor, in: utc) else { return }
                // Every whole minute strictly between the cursor and the next fire must not match.
                var minute = (cursor.timeIntervalSince1970 / 60).rounded(.down) * 60 + 60
                var checked = 0
                while minute < next.timeIntervalSince1970, checked < 20_000 {
                    let skipped = Self.matches(text, wall(Date(timeIntervalSince1970: minute), in: utc))
                    #expect(!skipped, "\(text): \(Date(timeIntervalSince1970: minute)) skipped before \(next)")
                    if skipped { return }
                    minute += 60
                    checked += 1
                }
                cursor = next
            }
        }
    }

    /// An independent reading of a cron expression, field by field, for the properties.
    static func matches(_ text: String, _ local: DateComponents) -> Bool {
        let fields = text.split(separator: " ").map(String.init)
        func holds(_ field: String, _ value: Int, _ range: ClosedRange<Int>) -> Bool {
            field.split(separator: ",").contains { part in
                let pieces = part.split(separator: "/").map(String.init)
                let step = pieces.count == 2 ? Int(pieces[1])! : 1
                let bounds: ClosedRange<Int> =
                    if pieces[0] == "*" { range } else if pieces[0].contains("-") {
                        Int(pieces[0].split(separator: "-")[0])!...Int(pieces[0].split(separator: "-")[1])!
                    } else { Int(pieces[0])!...(pieces.count == 2 ? range.upperBound : Int(pieces[0])!) }
                return bounds.contains(value) && (value - bounds.lowerBound) % step == 0
            }
        }
        let weekday = local.weekday! - 1
        let domRestricted = !fields[2].hasPrefix("*")
        let dowRestricted = !fields[4].hasPrefix("*")
        let dom = holds(fields[2], local.day!, 1...31)
        let dow = holds(fields[4], weekday, 0...7) || (weekday == 0 && holds(fields[4], 7, 0...7))
        let day: Bool = switch (domRestricted, dowRestricted) {
        case (true, true): dom || dow
        case (true, false): dom
        case (false, true): dow
        case (false, false): true
        }
        return holds(fields[0], local.minute!, 0...59) && holds(fields[1], local.hour!, 0...23)
            && holds(fields[3], local.month!, 1...12) && day
    }
}
