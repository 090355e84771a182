import GGMLCore

/// Chooses one standard ggml type per tensor so that the tensors fit a byte budget with the least
/// predicted loss: a multiple-choice knapsack solved by Lagrangian relaxation (each tensor takes
/// the option minimising loss + λ·bytes; λ is bisected to the tightest λ that fits), then the
/// bytes left over are spent greedily on the upgrades with the best loss saved per byte.
///
/// Losses are assumed additive across tensors (small, independent perturbations of the output —
/// what mean KL divergence does to first order).
public enum TypePlanner {
    public struct Option: Sendable, Equatable {
        public let type: GGMLType
        public let bytes: Int
        public let loss: Double
        public init(type: GGMLType, bytes: Int, loss: Double) {
            self.type = type
            self.bytes = bytes
            self.loss = loss
        }
    }

    public struct Item: Sendable {
        public let name: String
        public let options: [Option]
        public init(name: String, options: [Option]) {
            self.name = name
            self.options = options
        }
    }

    public struct Plan: Sendable {
        /// Chosen option per item, in item order.
        public let choices: [Option]
        public init(choices: [Option]) { self.choices = choices }
        public var bytes: Int { choices.reduce(0) { $0 + $1.bytes } }
        public var loss: Double { choices.reduce(0) { $0 + $1.loss } }
    }

    /// Options not dominated by a smaller-or-equal, lower-or-equal-loss option, sorted by bytes:
    /// the lower convex hull is what the Lagrangian can pick; the greedy pass may use the rest.
    static func frontier(_ options: [Option]) -> [Option] {
        let sorted = options.sorted { $0.bytes != $1.bytes ? $0.bytes < $1.bytes : $0.loss < $1.loss }
        var out: [Option] = []
        for o in sorted where out.last.map({ o.loss < $0.loss }) ?? true { out.append(o) }
        return out
    }

    /// The plan of least total loss within `budget` bytes, or nil when even the smallest option of
    /// every item does not fit.
    public static func plan(_ items: [Item], budget: Int) -> Plan? {
        let fronts = items.map { frontier($0.options) }
        precondition(fronts.allSatisfy { !$0.isEmpty }, "every tensor needs at least one candidate type")
        let minBytes = fronts.reduce(0) { $0 + $1[0].bytes }
        if minBytes > budget { return nil }
        func pick(_ lambda: Double) -> [Int] {
            fronts.map { f in
                var best = 0
                for i in 1..<f.count where f[i].loss + lambda * Double(f[i].bytes) < f[best].loss + lambda * Double(f[best].bytes) {
                    best = i
                }
                return best
            }
        }
        func bytes(_ idx: [Int]) -> Int { zip(fronts, idx).reduce(0) { $0 + $1.0[$1.1].bytes } }
        var choice = pick(0)
        if bytes(choice) > budget {
            // λ large enough to force the smallest option everywhere
            var hi = 1e-30
            while bytes(pick(hi)) > budget { hi *= 4 }
            var lo = hi / 4
            for _ in 0..<200 {
                let mid = (lo + hi) / 2
                if bytes(pick(mid)) > budget { lo = mid } else { hi = mid }
                if hi - lo <= hi * 1e-12 { break }
            }
            choice = pick(hi)
        }
        // spend what is left: best loss saved per extra byte first
        var left = budget - bytes(choice)
        while true {
            var bestGain = 0.0, bestItem = -1, bestOpt = -1
            for (i, f) in fronts.enumerated() {
                let cur = f[choice[i]]
                for j in (choice[i] + 1)..<f.count {
                    let extra = f[j].bytes - cur.bytes
                    if extra > left || extra <= 0 { continue }
                    let gain = (cur.loss - f[j].loss) / Double(extra)
                    if gain > bestGain { bestGain = gain; bestItem = i; bestOpt = j }
                }
            }
            if bestItem < 0 { break }
            left -= fronts[bestItem][bestOpt].bytes - fronts[bestItem][choice[bestItem]].bytes
            choice[bestItem] = bestOpt
        }
        return Plan(choices: zip(fronts, choice).map { $0.0[$0.1] })
    }
}
