/// Sizes computed from numbers a file supplies: nil instead of a trap when they overflow, so the
/// caller can refuse the file with a message.
public func checkedProduct(_ factors: Int...) -> Int? { checkedProduct(factors) }

/// `checkedProduct` of a sequence.
public func checkedProduct(_ factors: some Sequence<Int>) -> Int? {
    var p = 1
    for f in factors {
        guard f >= 0 else { return nil }
        let (r, o) = p.multipliedReportingOverflow(by: f)
        guard !o else { return nil }
        p = r
    }
    return p
}

/// The sum of sizes, nil on overflow or when a term is nil.
public func checkedSum(_ terms: Int?...) -> Int? {
    var s = 0
    for t in terms {
        guard let t, t >= 0 else { return nil }
        let (r, o) = s.addingReportingOverflow(t)
        guard !o else { return nil }
        s = r
    }
    return s
}
