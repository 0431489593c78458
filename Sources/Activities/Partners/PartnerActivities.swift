import Foundation
import WorkflowRuntime

/// What a partner is, as the partner-approval workflow receives it.
public struct Partner: Codable, Sendable, Hashable {
    public var company: String
    public var contactName: String
    public var contactEmail: String
    /// The CRM deal the approval runs for.
    public var dealID: String
    /// The account owner (a person's name or address).
    public var owner: String

    public init(company: String, contactName: String, contactEmail: String, dealID: String, owner: String) {
        self.company = company
        self.contactName = contactName
        self.contactEmail = contactEmail
        self.dealID = dealID
        self.owner = owner
    }
}

/// What the fit score is computed from.
public struct FitSignals: Codable, Sendable, Hashable {
    public var employees: Int
    public var yearsInBusiness: Int
    public var referenceCustomers: Int
    /// Whether the partner covers a region we sell in.
    public var regionMatch: Bool

    public init(employees: Int, yearsInBusiness: Int, referenceCustomers: Int, regionMatch: Bool) {
        self.employees = employees
        self.yearsInBusiness = yearsInBusiness
        self.referenceCustomers = referenceCustomers
        self.regionMatch = regionMatch
    }
}

/// The commercial terms under negotiation.
public struct PartnerTerms: Codable, Sendable, Hashable {
    /// Revenue share for the partner, in percent (0 to 100).
    public var revenueSharePercent: Double
    public var paymentTermsDays: Int
    public var territory: String
    /// The partner's or our note on this version of the terms.
    public var note: String?

    public init(revenueSharePercent: Double, paymentTermsDays: Int, territory: String, note: String? = nil) {
        self.revenueSharePercent = revenueSharePercent
        self.paymentTermsDays = paymentTermsDays
        self.territory = territory
        self.note = note
    }

    /// Checks the terms can be put in a term sheet.
    /// - Throws: ``InvalidValueError`` naming the field (NaN, out-of-range values).
    public func validate() throws {
        guard revenueSharePercent.isFinite, (0...100).contains(revenueSharePercent) else {
            throw InvalidValueError(
                name: "revenueSharePercent", value: "\(revenueSharePercent)", requirement: "a number from 0 to 100")
        }
        guard (0...365).contains(paymentTermsDays) else {
            throw InvalidValueError(
                name: "paymentTermsDays", value: "\(paymentTermsDays)", requirement: "from 0 to 365 days")
        }
        guard !territory.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw InvalidValueError(name: "territory", value: "\"\"", requirement: "not empty")
        }
    }
}

/// `partner.score-fit`: a 0-100 score from the partner's size, age, references and region.
public struct ScorePartnerFit: Activity {
    public static let name = "partner.score-fit"

    public init() {}

    public func run(context: ActivityContext, input: FitSignals) async throws -> Int {
        Self.score(input)
    }

    /// Size up to 30 (saturating at 200 people), age up to 20 (10 years), references up to 30
    /// (5), region 20. Negative values count as zero.
    public static func score(_ signals: FitSignals) -> Int {
        let size = min(max(signals.employees, 0), 200) * 30 / 200
        let age = min(max(signals.yearsInBusiness, 0), 10) * 2
        let references = min(max(signals.referenceCustomers, 0), 5) * 6
        return size + age + references + (signals.regionMatch ? 20 : 0)
    }
}

/// A rendered term sheet: the exact text, and the SHA-256 that approvals and signatures bind to.
public struct TermSheet: Codable, Sendable, Hashable {
    public var version: Int
    public var text: String
    /// Hex SHA-256 of `text` (UTF-8).
    public var sha256: String

    public init(version: Int, text: String) {
        self.version = version
        self.text = text
        self.sha256 = Data(text.utf8).sha256Hex
    }
}

/// `partner.draft-term-sheet`: renders the terms for a partner as a versioned term sheet.
public struct DraftTermSheet: Activity {
    public static let name = "partner.draft-term-sheet"

    public struct Input: Codable, Sendable {
        public var partner: Partner
        public var terms: PartnerTerms
        public var version: Int

        public init(partner: Partner, terms: PartnerTerms, version: Int) {
            self.partner = partner
            self.terms = terms
            self.version = version
        }
    }

    public init() {}

    public func run(context: ActivityContext, input: Input) async throws -> TermSheet {
        try input.terms.validate()
        let terms = input.terms
        let text = """
            Partner term sheet v\(input.version) — deal \(input.partner.dealID)
            Partner: \(input.partner.company) (\(input.partner.contactName), \(input.partner.contactEmail))
            Territory: \(terms.territory)
            Revenue share: \(terms.revenueSharePercent.formatted(.number.precision(.fractionLength(0...2))))%
            Payment terms: net \(terms.paymentTermsDays) days
            """ + (terms.note.map { "\nNote: \($0)" } ?? "")
        return TermSheet(version: input.version, text: text)
    }
}

extension WorkflowRegistry {
    /// Registers the partner-approval activities (fit score, term sheet).
    public mutating func registerPartnerActivities() {
        register(ScorePartnerFit())
        register(DraftTermSheet())
    }
}
