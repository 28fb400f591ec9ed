/// Errors of the training layer, each saying what is wrong and what to do.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    /// The model's parameters and gradients would not fit in memory.
    case modelTooLarge(parameters: Int, bytesNeeded: Int, bytesAvailable: Int)
    /// An optimizer's state (`buffers` floats per parameter) would not fit in memory.
    case optimizerStateTooLarge(buffers: Int, parameters: Int, bytesNeeded: Int, bytesAvailable: Int)
    /// A dataset file is missing or unreadable.
    case datasetMissing(path: String, hint: String)
    /// A dataset file is there but not a valid IDX file of the expected kind.
    case datasetCorrupt(path: String, reason: String)
    /// A text corpus cannot train a language model: not UTF-8, empty, too many characters.
    case textUnusable(path: String, reason: String)
    /// A configuration value is out of range or contradicts another.
    case invalidConfiguration(String)
    /// A checkpoint file is unreadable, truncated or inconsistent.
    case checkpointCorrupt(path: String, reason: String)
    /// A checkpoint does not fit this run (another model, optimizer or rank count).
    case checkpointMismatch(path: String, reason: String)
    /// Something failed on `ranks` other ranks (their errors say why); this rank stopped too.
    case failedElsewhere(ranks: Int, what: String)
    /// A file could not be written (a full disk, a closed pipe, `/dev/full`).
    case writeFailed(path: String, reason: String)
    /// A signal stopped the run after `step` of `totalSteps`, saved at `checkpoint` (nil:
    /// the run had no checkpointer). Not a failure of the run: it can be resumed from there.
    case stopped(step: Int, totalSteps: Int, signal: Int32, checkpoint: String?)
    /// Too many consecutive steps had non-finite gradients on some rank.
    case diverged(step: Int, skippedInARow: Int)

    public var description: String {
        switch self {
        case .modelTooLarge(let parameters, let needed, let available):
            return "the model has \(parameters) parameters and needs about \(needed >> 20) MiB with its gradients and activations, "
                + "but only \(available >> 20) MiB of memory is available; use smaller --hidden widths (MLP) or a smaller --channels, --layers, --context or --batch-size (GPT)"
        case .optimizerStateTooLarge(let buffers, let parameters, let needed, let available):
            return "the optimizer's state (\(buffers) float(s) for each of \(parameters) parameters) needs about \(needed >> 20) MiB, "
                + "but only \(available >> 20) MiB of memory is available; use smaller --hidden widths or an optimizer with less state"
        case .datasetMissing(let path, let hint):
            return "dataset file \(path) is missing or unreadable. \(hint)"
        case .datasetCorrupt(let path, let reason):
            return "dataset file \(path) is not a valid IDX file: \(reason). Reinstall it (apt-get install --reinstall dataset-fashion-mnist) or pass --synthetic"
        case .textUnusable(let path, let reason):
            return "text \(path) cannot be used: \(reason)"
        case .invalidConfiguration(let reason):
            return reason
        case .checkpointCorrupt(let path, let reason):
            return "checkpoint \(path) is damaged: \(reason); resume from an earlier checkpoint (the directory keeps the last --keep-checkpoints)"
        case .checkpointMismatch(let path, let reason):
            return "checkpoint \(path) does not fit this run: \(reason)"
        case .failedElsewhere(let ranks, let what):
            return "\(what) failed on \(ranks) other rank(s); see their messages"
        case .writeFailed(let path, let reason):
            return "cannot write \(path): \(reason); what was written before is intact, free space or choose another file"
        case .stopped(let step, let total, let signal, let checkpoint):
            return "stopped by \(StopSignals.name(signal)) after step \(step) of \(total); "
                + (checkpoint.map { "checkpoint saved in \($0)" } ?? "nothing saved (no checkpoint directory)")
        case .diverged(let step, let skipped):
            return "training diverged: \(skipped) steps in a row up to step \(step) had NaN or Inf gradients on some rank; "
                + "lower the learning rate"
        }
    }
}
