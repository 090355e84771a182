/// The size/quality trade-off worth offering: a type is only interesting if no other type is both
/// no larger and no worse. Lower is better on both axes (bytes, KL divergence).
public enum Pareto {
    /// Indices of the points no other point dominates. A point dominates another when it is ≤ on
    /// both axes and < on at least one, so exact duplicates keep each other on the front (neither is
    /// better) and a point tied on one axis loses only to one strictly better on the other.
    /// Points with NaN coordinates neither dominate nor are dominated: comparisons with NaN fail.
    public static func front(_ points: [(x: Double, y: Double)]) -> Set<Int> {
        var result = Set<Int>()
        // Quadratic: a compare table holds tens of types, and this keeps the definition obvious.
        for (i, p) in points.enumerated() {
            let dominated = points.indices.contains { j in
                let q = points[j]
                return j != i && q.x <= p.x && q.y <= p.y && (q.x < p.x || q.y < p.y)
            }
            if !dominated { result.insert(i) }
        }
        return result
    }
}
