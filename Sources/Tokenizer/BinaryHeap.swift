/// Elements ordered for a priority queue: `before` is true when `self` must come out first.
protocol HeapOrdered {
    func before(_ other: Self) -> Bool
}

/// The binary min-heap both BPE merging (lowest merge rank first) and SentencePiece merging
/// (highest score first) pop their next bigram from.
struct BinaryHeap<Element: HeapOrdered> {
    private var items: [Element] = []

    var isEmpty: Bool { items.isEmpty }

    mutating func removeAll(keepingCapacity keep: Bool) { items.removeAll(keepingCapacity: keep) }

    mutating func push(_ x: Element) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) >> 1
            if items[i].before(items[p]) { items.swapAt(i, p); i = p } else { break }
        }
    }

    mutating func pop() -> Element {
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && items[l].before(items[m]) { m = l }
                if r < n && items[r].before(items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
