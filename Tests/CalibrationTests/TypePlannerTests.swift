import Foundation
@testable import Calibration
import GGMLCore
import Testing

@Suite struct TypePlannerTests {
    /// Exhaustive search over every combination, for checking the planner on small cases.
    static func bruteForce(_ items: [TypePlanner.Item], budget: Int) -> Double? {
        var best: Double? = nil
        func go(_ i: Int, _ bytes: Int, _ loss: Double) {
            if bytes > budget { return }
            if i == items.count { if best.map({ loss < $0 }) ?? true { best = loss }; return }
            for o in items[i].options { go(i + 1, bytes + o.bytes, loss + o.loss) }
        }
        go(0, 0, 0)
        return best
    }

    static func randomItems(_ n: Int, seed: UInt64) -> [TypePlanner.Item] {
        var s = seed
        func r() -> Double { s = s &* 6364136223846793005 &+ 1442695040888963407; return Double(s >> 11) / Double(1 << 53) }
        let types: [GGMLType] = [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_0]
        return (0..<n).map { i in
            let size = 100 + Int(r() * 900), sens = 0.01 + r()
            let opts = types.map { t in
                TypePlanner.Option(type: t, bytes: Int(Double(size) * t.bitsPerWeight), loss: sens * pow(2, -2 * t.bitsPerWeight) * (0.8 + 0.4 * r()))
            }
            return TypePlanner.Item(name: "t\(i)", options: opts)
        }
    }

    @Test func fitsTheBudgetAndIsNearOptimal() throws {
        for seed in 1...20 {
            let items = Self.randomItems(6, seed: UInt64(seed))
            let minB = items.reduce(0) { $0 + $1.options.map(\.bytes).min()! }
            let maxB = items.reduce(0) { $0 + $1.options.map(\.bytes).max()! }
            for f in [0.0, 0.2, 0.5, 0.8, 1.0] {
                let budget = minB + Int(Double(maxB - minB) * f)
                let plan = try #require(TypePlanner.plan(items, budget: budget))
                #expect(plan.bytes <= budget)
                let best = try #require(Self.bruteForce(items, budget: budget))
                // Lagrangian + greedy is not exact on a multiple-choice knapsack; it must be close
                #expect(plan.loss <= best * 1.25 + 1e-12, "seed \(seed) budget \(budget): \(plan.loss) vs optimum \(best)")
            }
        }
    }

    @Test func refusesAnImpossibleBudgetAndTakesTheBestWhenUnconstrained() throws {
        let items = Self.randomItems(4, seed: 7)
        let minB = items.reduce(0) { $0 + $1.options.map(\.bytes).min()! }
        #expect(TypePlanner.plan(items, budget: minB - 1) == nil)
        let plan = try #require(TypePlanner.plan(items, budget: .max / 2))
        for (item, c) in zip(items, plan.choices) { #expect(c.loss == item.options.map(\.loss).min()!) }
    }

    @Test func dominatedOptionsAreDropped() {
        let f = TypePlanner.frontier([
            .init(type: .q4_0, bytes: 10, loss: 5), .init(type: .q4_1, bytes: 11, loss: 6),
            .init(type: .q5_0, bytes: 12, loss: 3), .init(type: .q8_0, bytes: 20, loss: 3),
        ])
        #expect(f.map(\.type) == [.q4_0, .q5_0])
    }
}
