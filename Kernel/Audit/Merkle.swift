/// The ledger's Merkle tree, in the style of RFC 6962 (Certificate Transparency) §2.1, with SHA-256.
///
/// Leaf `i` (0-based) is ledger record `seq = i + 1`, of any kind. Its data is the record's 32-byte hash, so
/// `leaf = SHA-256(0x00 ‖ record hash)` and `node = SHA-256(0x01 ‖ left ‖ right)`. The root of `n` leaves is
/// RFC 6962's MTH: for `n > 1`, split at the largest power of two `k < n`, `MTH = node(MTH(first k), MTH(rest))`;
/// the root of no leaves is SHA-256 of nothing.
///
/// A checkpoint signs the root of every record before it, so one record can be shown to belong to a signed ledger
/// with an inclusion proof of about log2(n) hashes, without handing over the ledger.
public enum Merkle {
    /// `SHA-256(0x00 ‖ recordHash)`.
    public static func leaf(_ recordHash: [UInt8]) -> [UInt8] {
        Sodium.sha256([0x00] + recordHash)
    }

    /// `SHA-256(0x01 ‖ left ‖ right)`.
    public static func node(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(65)
        bytes.append(0x01)
        bytes.append(contentsOf: left)
        bytes.append(contentsOf: right)
        return Sodium.sha256(bytes)
    }

    /// SHA-256 of the empty string: the root of a tree with no leaves.
    public static let emptyRoot: [UInt8] = Sodium.sha256([UInt8]())

    /// The root of `leaves` (leaf hashes), computed directly from the definition.
    public static func root(of leaves: ArraySlice<[UInt8]>) -> [UInt8] {
        switch leaves.count {
        case 0: return emptyRoot
        case 1: return leaves[leaves.startIndex]
        default:
            let k = largestPowerOfTwo(below: leaves.count)
            let mid = leaves.startIndex + k
            return node(root(of: leaves[..<mid]), root(of: leaves[mid...]))
        }
    }

    /// The audit path (RFC 6962 §2.1.1) of leaf `index` in `leaves`: the sibling hashes from the leaf up.
    public static func auditPath(index: Int, leaves: ArraySlice<[UInt8]>) -> [[UInt8]] {
        guard leaves.count > 1 else { return [] }
        let k = largestPowerOfTwo(below: leaves.count)
        let mid = leaves.startIndex + k
        if index < k {
            return auditPath(index: index, leaves: leaves[..<mid]) + [root(of: leaves[mid...])]
        }
        return auditPath(index: index - k, leaves: leaves[mid...]) + [root(of: leaves[..<mid])]
    }

    /// Recomputes the root from a leaf hash and its audit path (RFC 9162 §2.1.3.2). Returns nil if the path has the
    /// wrong length for `index` in a tree of `size` leaves.
    public static func rootFromPath(leaf: [UInt8], index: Int64, size: Int64, path: [[UInt8]]) -> [UInt8]? {
        guard index >= 0, index < size else { return nil }
        var fn = index
        var sn = size - 1
        var r = leaf
        for p in path {
            guard sn != 0 else { return nil }
            if fn & 1 == 1 || fn == sn {
                r = node(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0, fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = node(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 ? r : nil
    }

    /// The largest power of two strictly less than `n` (n ≥ 2).
    static func largestPowerOfTwo(below n: Int) -> Int {
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }
}

/// The right edge of a growing Merkle tree: the roots of its perfect subtrees, largest first. Appending a leaf is
/// O(1) amortized and the root is O(log n), so the writer keeps one of these instead of the tree, and a segment
/// record carries one so a ledger whose older segments were removed can still be checked.
public struct MerkleFrontier: Sendable, Equatable {
    /// Leaves appended so far.
    public private(set) var size: Int64 = 0
    /// Roots of the perfect subtrees that make up the tree, largest (leftmost) first; one per set bit of `size`.
    public private(set) var nodes: [[UInt8]] = []

    public init() {}

    /// A frontier from its parts; nil unless there is exactly one node per set bit of `size`, each 32 bytes.
    public init?(size: Int64, nodes: [[UInt8]]) {
        guard size >= 0, nodes.count == size.nonzeroBitCount, nodes.allSatisfy({ $0.count == 32 }) else { return nil }
        self.size = size
        self.nodes = nodes
    }

    /// Appends the leaf for a record with hash `recordHash` (32 bytes).
    public mutating func append(recordHash: [UInt8]) {
        var node = Merkle.leaf(recordHash)
        var n = size
        // Merge equal-sized subtrees: one merge per trailing 1 bit of the old size.
        while n & 1 == 1 {
            node = Merkle.node(nodes.removeLast(), node)
            n >>= 1
        }
        nodes.append(node)
        size += 1
    }

    /// The Merkle tree hash of every leaf appended so far.
    public var root: [UInt8] {
        guard var r = nodes.last else { return Merkle.emptyRoot }
        for left in nodes.dropLast().reversed() { r = Merkle.node(left, r) }
        return r
    }
}
