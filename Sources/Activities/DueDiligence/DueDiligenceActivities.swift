import Foundation
import WorkflowRuntime

/// One issue an analyst logged for a workstream: what the due diligence weighs.
public struct DDIssue: Codable, Sendable, Hashable {
    public var title: String
    /// 1 (minor) to 5 (deal-breaking).
    public var severity: Int
    /// The document in the room it comes from.
    public var document: String?

    public init(title: String, severity: Int, document: String? = nil) {
        self.title = title
        self.severity = severity
        self.document = document
    }
}

/// A workstream's evidence, as collected.
public struct DDEvidence: Codable, Sendable, Hashable {
    public var workstream: String
    public var documents: [String]
    public var issues: [DDIssue]

    public init(workstream: String, documents: [String], issues: [DDIssue]) {
        self.workstream = workstream
        self.documents = documents
        self.issues = issues
    }
}

/// A workstream's analysis: its risk score and whether a reviewer must look before findings.
public struct DDAnalysis: Codable, Sendable, Hashable {
    public var workstream: String
    /// 0-100: the severities' weight against the worst case.
    public var riskScore: Int
    public var needsReview: Bool
    public var issues: [DDIssue]
}

/// A workstream's findings: its issues, worst first.
public struct DDFindings: Codable, Sendable, Hashable {
    public var workstream: String
    public var riskScore: Int
    public var issues: [DDIssue]
    /// Who reviewed them, when the workstream paused for a reviewer.
    public var reviewedBy: String?

    public init(workstream: String, riskScore: Int, issues: [DDIssue], reviewedBy: String? = nil) {
        self.workstream = workstream
        self.riskScore = riskScore
        self.issues = issues
        self.reviewedBy = reviewedBy
    }
}

/// `dd.collect`: checks the workstream's evidence (every issue's severity from 1 to 5, its
/// document among the room's) and returns it.
public struct CollectDDEvidence: Activity {
    public static let name = "dd.collect"
    public init() {}

    public func run(context: ActivityContext, input: DDEvidence) async throws -> DDEvidence {
        for (index, issue) in input.issues.enumerated() {
            guard (1...5).contains(issue.severity) else {
                throw InvalidValueError(
                    name: "\(input.workstream) issues[\(index)].severity", value: "\(issue.severity)",
                    requirement: "from 1 to 5")
            }
            if let document = issue.document, !input.documents.contains(document) {
                throw ApplicationError(
                    "\(input.workstream) issue '\(issue.title)' cites '\(document)', which is not in the room",
                    type: "EvidenceMissing", nonRetryable: true)
            }
        }
        return input
    }
}

/// `dd.analyze`: the risk score (the sum of squared severities against five deal-breakers) and
/// whether a reviewer must see it (a score of 50 or more, or any severity-5 issue).
public struct AnalyzeDDEvidence: Activity {
    public static let name = "dd.analyze"
    public init() {}

    public func run(context: ActivityContext, input: DDEvidence) async throws -> DDAnalysis {
        let weight = input.issues.reduce(0) { $0 + $1.severity * $1.severity }
        let score = min(100, weight * 100 / 125)
        return DDAnalysis(
            workstream: input.workstream, riskScore: score,
            needsReview: score >= 50 || input.issues.contains { $0.severity == 5 }, issues: input.issues)
    }
}

/// The risk register, valuation impact and IC memo built from every workstream's findings.
public struct ICMemo: Codable, Sendable, Hashable {
    public struct Risk: Codable, Sendable, Hashable {
        public var workstream: String
        public var title: String
        public var severity: Int
    }

    public var dealID: String
    /// Every issue of every workstream, worst first.
    public var riskRegister: [Risk]
    /// The valuation adjustment the risks suggest, in percent (0 to -30).
    public var valuationImpactPercent: Int
    public var text: String
    /// Hex SHA-256 of `text`: what the IC's decision binds to.
    public var sha256: String
}

/// `dd.ic-memo`: consolidates the findings into the risk register, the valuation impact (one
/// point per severity point above 2, at most 30) and the IC memo.
public struct DraftICMemo: Activity {
    public static let name = "dd.ic-memo"

    public struct Input: Codable, Sendable {
        public var dealID: String
        public var target: String
        public var findings: [DDFindings]
        public init(dealID: String, target: String, findings: [DDFindings]) {
            self.dealID = dealID
            self.target = target
            self.findings = findings
        }
    }

    public init() {}

    public func run(context: ActivityContext, input: Input) async throws -> ICMemo {
        let register = input.findings.flatMap { findings in
            findings.issues.map { ICMemo.Risk(workstream: findings.workstream, title: $0.title, severity: $0.severity) }
        }.sorted { ($0.severity, $1.workstream, $1.title) > ($1.severity, $0.workstream, $0.title) }
        let impact = -min(30, register.reduce(0) { $0 + max(0, $1.severity - 2) })
        var lines = ["IC memo — \(input.target) (deal \(input.dealID))", "Valuation impact: \(impact)%", "Risks:"]
        lines += register.map { "- [\($0.severity)] \($0.workstream): \($0.title)" }
        lines += input.findings.map { "Workstream \($0.workstream): risk \($0.riskScore)/100" }
        let text = lines.joined(separator: "\n")
        return ICMemo(
            dealID: input.dealID, riskRegister: register, valuationImpactPercent: impact, text: text,
            sha256: Data(text.utf8).sha256Hex)
    }
}

extension WorkflowRegistry {
    /// Registers the due-diligence activities (collect, analyze, IC memo).
    public mutating func registerDueDiligenceActivities() {
        register(CollectDDEvidence())
        register(AnalyzeDDEvidence())
        register(DraftICMemo())
    }
}
