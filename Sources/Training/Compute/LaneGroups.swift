import Collectives

/// Calls `body(start, valid)` for each group of 16 of `count` elements: `valid` is 16 (a
/// constant, once inlined) but in a shorter last group.
@inline(__always)
func forEachLaneGroup(_ count: Int, _ body: (_ start: Int, _ valid: Int) -> Void) {
    var start = 0
    while start + 16 <= count {
        body(start, 16)
        start += 16
    }
    if start < count { body(start, count - start) }
}
