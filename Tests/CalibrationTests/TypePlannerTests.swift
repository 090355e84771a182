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

/// The per-type gain of a sensitivity: one probe's KLD per unit of output error serves every type
/// while their errors keep the proportions bits give them, and the block-minimum types get a
/// second probe where they do not (a tensor whose rounding error sits in a few columns that those
/// types place exactly).
@Suite struct SensitivityGainTests {
    @Test func blockMinimumTypesGetTheirOwnProbeOnlyWhenTheirErrorsStrayFromTheProbes() {
        var errors: [GGMLType: Double] = [.q4_0: 1.0, .q4_1: 0.7, .q5_0: 0.3, .q5_1: 0.2, .q8_0: 0.005, .q2_K: 4.0]
        #expect(Sensitivity.offsetProbe(errors, probe: .q4_0) == nil)
        // a probe of another type has nothing to compare with
        #expect(Sensitivity.offsetProbe(errors, probe: .q8_0) == nil)
        errors[.q4_1] = 1.0 / 700
        errors[.q2_K] = 1.0 / 45
        #expect(Sensitivity.offsetProbe(errors, probe: .q4_0) == .q4_1)
        errors[.q4_1] = 5
        #expect(Sensitivity.offsetProbe(errors, probe: .q4_0) == .q4_1)

        let one = Sensitivity.losses(errors, gain: 2, offsetGain: nil)
        #expect(one[.q4_0] == 2 && one[.q4_1] == 10 && one[.q8_0] == 0.01)
        let two = Sensitivity.losses(errors, gain: 2, offsetGain: 300)
        // q4_1, q5_1, q2_K (and q4_K, q5_K) store a block minimum: they take the second gain
        #expect(two[.q4_1] == 1500 && two[.q5_1] == 60 && two[.q2_K] == 300.0 / 45)
        #expect(two[.q4_0] == 2 && two[.q5_0] == 0.6 && two[.q8_0] == 0.01)
        #expect(Sensitivity.blockMinimumTypes == [.q4_1, .q5_1, .q2_K, .q4_K, .q5_K])
    }
}
