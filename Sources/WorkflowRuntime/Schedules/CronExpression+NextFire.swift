import Foundation

extension CronExpression {
    /// How far ahead ``nextFire(after:in:)`` looks: a valid expression fires within a few years
    /// (29 February with a weekday restriction is the sparsest).
    static let searchDays = 366 * 12

    /// The first instant after `date` at which the expression fires in `timeZone`.
    ///
    /// The expression matches wall-clock minutes in the zone, with daylight saving as people
    /// expect: a minute that does not exist (inside a spring-forward gap, e.g. 2:30 AM when clocks
    /// jump from 2:00 to 3:00) fires once, at the first instant after the gap; a minute that
    /// happens twice (inside a fall-back overlap) fires once, at its first occurrence.
    /// - Returns: `nil` only when nothing matches within twelve years.
    public func nextFire(after date: Date, in timeZone: TimeZone) -> Date? {
        let zone = ZoneClock(timeZone)
        let after = date.timeIntervalSince1970
        let now = Int64(after.rounded(.down))
        let startWall = now + zone.offset(at: now)
        let startDay = startWall.floorDivided(by: 86_400)
        let hourValues = hours.values(in: 0...23)
        let minuteValues = minutes.values(in: 0...59)
        let secondValues = seconds.values(in: 0...59)
        for dayNumber in startDay..<(startDay + Int64(Self.searchDays)) {
            guard matches(CivilDate(daysSince1970: dayNumber)) else { continue }
            for hour in hourValues {
                let hourWall = dayNumber * 86_400 + Int64(hour) * 3_600
                if hourWall + 3_599 < startWall { continue }
                for minute in minuteValues {
                    let minuteWall = hourWall + Int64(minute) * 60
                    if minuteWall + 59 < startWall { continue }
                    for second in secondValues {
                        let wall = minuteWall + Int64(second)
                        guard wall >= startWall else { continue }
                        let instant = zone.firstInstant(atOrAfterWall: wall)
                        if Double(instant) > after { return Date(timeIntervalSince1970: Double(instant)) }
                    }
                }
            }
        }
        return nil
    }

    /// The next `count` fire times after `date` (fewer if it stops firing).
    public func nextFires(_ count: Int, after date: Date, in timeZone: TimeZone) -> [Date] {
        var fires: [Date] = []
        var cursor = date
        while fires.count < count, let next = nextFire(after: cursor, in: timeZone) {
            fires.append(next)
            cursor = next
        }
        return fires
    }
}

/// Wall-clock arithmetic in one time zone: the offset at an instant, and the instant a wall-clock
/// time happens at (the first, when it happens twice; the end of the gap, when it never does).
struct ZoneClock {
    let timeZone: TimeZone

    init(_ timeZone: TimeZone) {
        self.timeZone = timeZone
    }

    /// Seconds east of UTC at `instant` (seconds since 1970).
    func offset(at instant: Int64) -> Int64 {
        Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant))))
    }

    /// The wall-clock time (seconds since 1970 as if in UTC) at `instant`.
    func wall(at instant: Int64) -> Int64 { instant + offset(at: instant) }

    /// The first instant whose wall-clock time is `wall`; if `wall` falls in a gap, the first
    /// instant after the gap.
    func firstInstant(atOrAfterWall wall: Int64) -> Int64 {
        // The offsets around the wall time bound every instant it can be (zones change offset at
        // most once within a day).
        let offsets = [offset(at: wall - 86_400), offset(at: wall + 86_400)]
        let candidates = Set(offsets.map { wall - $0 }).sorted()
        if let first = candidates.first(where: { self.wall(at: $0) == wall }) { return first }
        // A gap: the wall clock jumps over `wall` at the transition between the candidates.
        var low = candidates.first!
        var high = candidates.last!
        if self.wall(at: high) < wall { return high }  // (offsets changed twice: take what is there)
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if self.wall(at: middle) >= wall { high = middle } else { low = middle }
        }
        return high
    }
}

/// A proleptic Gregorian calendar date, computed from a day count (no Calendar, no zone).
struct CivilDate: Hashable {
    let year: Int64
    let month: Int
    let day: Int
    /// 0 is Sunday.
    let weekday: Int

    /// The date `days` days after 1970-01-01 (negative before it).
    init(daysSince1970 days: Int64) {
        // Days since 0000-03-01, split into 400-year eras of 146,097 days.
        let shifted = days + 719_468
        let era = shifted.floorDivided(by: 146_097)
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        day = Int(dayOfYear - (153 * monthFromMarch + 2) / 5 + 1)
        month = Int(monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9)
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        weekday = Int((days + 4).floorModulo(7))  // 1970-01-01 was a Thursday
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }

    fileprivate func floorModulo(_ divisor: Int64) -> Int64 {
        self - floorDivided(by: divisor) * divisor
    }
}
