#if canImport(Glibc)
import Glibc
#endif

/// A learning rate as a function of the step.
public enum LearningRateSchedule: Sendable, Equatable {
    /// The same rate at every step.
    case constant(Float)
    /// Linear warm-up from 0 to `peak` over `warmupSteps`, then a cosine decay to `minimum`
    /// at `totalSteps`.
    case cosine(peak: Float, warmupSteps: Int, totalSteps: Int, minimum: Float)

    /// The rate at `step` (0-based).
    public func rate(at step: Int) -> Float {
        switch self {
        case .constant(let rate):
            return rate
        case .cosine(let peak, let warmup, let total, let minimum):
            if step < warmup { return peak * Float(step + 1) / Float(warmup) }
            let progress = Float(min(step, total) - warmup) / Float(max(1, total - warmup))
            return minimum + 0.5 * (peak - minimum) * (1 + cosf(.pi * progress))
        }
    }

    /// Whether `step` is in the warm-up.
    public func isWarmingUp(at step: Int) -> Bool {
        if case .cosine(_, let warmup, _, _) = self { return step < warmup }
        return false
    }
}
