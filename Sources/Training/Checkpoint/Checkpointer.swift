import Collectives
#if canImport(Glibc)
import Glibc
#endif

/// Where a ``Trainer`` is in its run: what a checkpoint saves besides the model and the
/// optimizer, so that a resumed run continues exactly as the uninterrupted one would.
public struct TrainerPosition: Sendable, Equatable {
    /// Steps done.
    public var step = 0
    /// Steps skipped for non-finite gradients, in all and in a row.
    public var skippedSteps = 0, skippedInARow = 0
    /// This rank's loss sum and count since the last logged step.
    public var lossSinceLog = 0.0, stepsSinceLog = 0

    /// The start of a run.
    public init() {}
}

/// Saves and restores whole runs in a directory shared by the ranks (llm.c- and
/// PyTorch-style checkpoints): `step-00000120/model.safetensors` holds every parameter,
/// named by its arena slot, with the run's configuration in the metadata;
/// `step-00000120/rank-00003.safetensors` holds rank 3's optimizer state (buffers as
/// tensors, scalars and the trainer's position in the metadata).
///
/// A checkpoint is written into a hidden `.step-….partial` directory, every file flushed,
/// and renamed into place by rank 0 only once every rank has written its part, so the
/// directory only ever holds complete checkpoints; the previous one stays until the new one
/// is in place, and only the newest ``keep`` are kept. Every step of saving and restoring is
/// agreed across ranks: a failure on one rank is an error on all.
public final class Checkpointer {
    /// The directory; every rank must see the same one.
    public let directory: String
    /// How many complete checkpoints to keep.
    public let keep: Int
    /// What must match for a checkpoint to be resumed: model shape, optimizer and its
    /// settings, rank count, seed… Saved in the model file's metadata and compared on restore.
    public let configuration: [String: String]
    /// The ranks saving together.
    public let communicator: Communicator

    /// The name of a rank's own parameters in its file, saved when the replicas differ.
    static let replica = "replica.parameters"

    /// What to do with a checkpoint whose optimizer state does not fit.
    static let parametersOnly = "; to start from its parameters with fresh optimizer state, load them alone (Checkpointer.loadParameters, dlion-train --init-from)"

    /// The format of the files; a checkpoint of another format is refused.
    public static let formatVersion = "1"

    /// A checkpointer into `directory`, keeping the last `keep`, for a run described by
    /// `configuration`.
    public init(directory: String, keep: Int = 2, configuration: [String: String], communicator: Communicator) {
        self.directory = directory
        self.keep = max(1, keep)
        self.configuration = configuration
        self.communicator = communicator
    }

    /// The path of the checkpoint after `step` steps.
    public func path(step: Int) -> String { "\(directory)/\(Checkpointer.name(step: step))" }

    static func name(step: Int) -> String {
        let digits = String(step)
        return "step-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    private func rankFile(_ rank: Int) -> String {
        let digits = String(rank)
        return "rank-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits + ".safetensors"
    }

    /// Saves `arena`'s parameters, `optimizer`'s state on every rank and `position`; collective.
    public func save(arena: ParameterArena, optimizer: any Optimizer, position: TrainerPosition) throws {
        let final = path(step: position.step)
        let partial = "\(directory)/.\(Checkpointer.name(step: position.step)).partial"
        try communicator.agreeOnSuccess("preparing the checkpoint directory") {
            guard communicator.rank == 0 else { return }
            try Files.makeDirectory(directory)
            // Left by a save that failed (a full disk, a killed rank): their space is needed.
            for name in Files.names(in: directory) ?? [] where name.hasPrefix(".step-") && name.hasSuffix(".partial") {
                Files.removeDirectory("\(directory)/\(name)")
            }
            try Files.makeDirectory(partial)
        }
        try communicator.agreeOnSuccess("writing the checkpoint") {
            if communicator.rank == 0 {
                var metadata = configuration
                metadata["format_version"] = Checkpointer.formatVersion
                metadata["step"] = String(position.step)
                metadata["ranks"] = String(communicator.size)
                let tensors = arena.slots.map { SafeTensors.Tensor(name: $0.name, shape: $0.shape, values: Array(arena.parameters($0))) }
                try Files.writeAtomically(SafeTensors(tensors: tensors, metadata: metadata).encoded(), to: "\(partial)/model.safetensors")
            }
            let state = optimizer.state
            var metadata = ["format_version": Checkpointer.formatVersion, "optimizer": optimizer.name, "rank": String(communicator.rank),
                            "trainer.step": String(position.step), "trainer.skipped_steps": String(position.skippedSteps),
                            "trainer.skipped_in_a_row": String(position.skippedInARow),
                            "trainer.loss_since_log_bits": String(position.lossSinceLog.bitPattern),
                            "trainer.steps_since_log": String(position.stepsSinceLog)]
            for (name, value) in state.scalars { metadata["scalar.\(name)"] = String(value) }
            var tensors = state.buffers.map { SafeTensors.Tensor(name: $0.name, shape: [$0.count], values: $0.values) }
            if let distributed = optimizer as? any DistributedOptimizer, !distributed.replicasAgree {
                // Mid-round, each rank's replica is its own state.
                tensors.append(SafeTensors.Tensor(name: Checkpointer.replica, shape: [arena.count], values: Array(arena.parameters)))
            }
            try Files.writeAtomically(SafeTensors(tensors: tensors, metadata: metadata).encoded(), to: "\(partial)/\(rankFile(communicator.rank))")
        }
        try communicator.agreeOnSuccess("completing the checkpoint") {
            guard communicator.rank == 0 else { return }
            Files.removeDirectory(final)
            guard rename(partial, final) == 0 else {
                throw TrainingError.writeFailed(path: final, reason: "cannot rename \(partial) into place: \(String(cString: strerror(errno)))")
            }
            try Files.syncDirectory(of: final)
            for old in completeSteps().dropLast(keep) { Files.removeDirectory(path(step: old)) }
        }
    }

    /// The steps of the complete checkpoints in the directory, oldest first.
    public func completeSteps() -> [Int] { Checkpointer.completeSteps(in: directory) }

    /// The steps of the complete checkpoints in `directory`, oldest first.
    static func completeSteps(in directory: String) -> [Int] {
        (Files.names(in: directory) ?? []).compactMap { name -> Int? in
            guard name.hasPrefix("step-"), name.count == 13 else { return nil }
            return Int(name.dropFirst(5))
        }.sorted()
    }

    /// Restores the newest complete checkpoint into `arena` and `optimizer` and returns the
    /// trainer's position; collective. Throws on every rank when there is none, or when it is
    /// damaged or does not fit this run (saying what differs).
    public func restoreLatest(arena: ParameterArena, optimizer: any Optimizer) throws -> TrainerPosition {
        var newest = [Int64(completeSteps().last ?? -1)]
        try communicator.broadcast(&newest, root: 0)
        guard newest[0] >= 0 else {
            throw TrainingError.invalidConfiguration("no complete checkpoint in \(directory) to resume from; run without --resume to start afresh")
        }
        return try restore(step: Int(newest[0]), arena: arena, optimizer: optimizer)
    }

    /// Restores the checkpoint after `step` steps (see ``restoreLatest(arena:optimizer:)``).
    public func restore(step: Int, arena: ParameterArena, optimizer: any Optimizer) throws -> TrainerPosition {
        let checkpoint = path(step: step)
        return try communicator.agreeOnSuccess("restoring the checkpoint") {
            let modelPath = "\(checkpoint)/model.safetensors"
            let model = try SafeTensors(decoding: Files.read(modelPath), path: modelPath)
            func mismatch(_ reason: String) -> TrainingError { .checkpointMismatch(path: checkpoint, reason: reason) }
            guard model.metadata["format_version"] == Checkpointer.formatVersion else {
                throw mismatch("its format is \(model.metadata["format_version"] ?? "unknown"), this program reads \(Checkpointer.formatVersion)")
            }
            guard model.metadata["ranks"] == String(communicator.size) else {
                throw mismatch("it was saved by \(model.metadata["ranks"] ?? "?") ranks, this run has \(communicator.size): per-rank optimizer state cannot move between rank counts\(Checkpointer.parametersOnly)")
            }
            let differing = configuration.keys.sorted().filter { model.metadata[$0] != configuration[$0] }
            guard differing.isEmpty else {
                throw mismatch(differing.map { "\($0) is \(model.metadata[$0] ?? "missing") there, \(configuration[$0] ?? "") here" }.joined(separator: "; "))
            }
            for slot in arena.slots {
                guard let tensor = model[slot.name], tensor.shape == slot.shape else {
                    throw mismatch("its tensor \(slot.name) is \(model[slot.name].map { "\($0.shape)" } ?? "missing"), the model's is \(slot.shape)")
                }
                _ = arena.parameters(slot).update(fromContentsOf: tensor.values)
            }
            let rankPath = "\(checkpoint)/\(rankFile(communicator.rank))"
            let saved = try SafeTensors(decoding: Files.read(rankPath), path: rankPath)
            guard saved.metadata["optimizer"] == optimizer.name else {
                throw mismatch("it holds the state of \(saved.metadata["optimizer"] ?? "an unknown optimizer"), this run uses \(optimizer.name)\(Checkpointer.parametersOnly)")
            }
            if let replica = saved[Checkpointer.replica] {
                guard replica.values.count == arena.count else { throw mismatch("its replica holds \(replica.values.count) parameters, the model \(arena.count)") }
                _ = arena.parameters.update(fromContentsOf: replica.values)
            }
            for buffer in optimizer.state.buffers {
                guard let tensor = saved[buffer.name], tensor.values.count == buffer.count else {
                    throw mismatch("its optimizer buffer \(buffer.name) is \(saved[buffer.name].map { "\($0.values.count) floats" } ?? "missing"), this run's holds \(buffer.count)")
                }
                try buffer.restore(from: tensor.values)
            }
            var scalars: [String: Int] = [:]
            for (key, value) in saved.metadata where key.hasPrefix("scalar.") { scalars[String(key.dropFirst(7))] = Int(value) }
            try optimizer.restore(scalars: scalars)
            func integer(_ key: String) throws -> Int {
                guard let text = saved.metadata[key], let value = Int(text) else { throw mismatch("its metadata lacks \(key)") }
                return value
            }
            var position = TrainerPosition()
            position.step = try integer("trainer.step")
            position.skippedSteps = try integer("trainer.skipped_steps")
            position.skippedInARow = try integer("trainer.skipped_in_a_row")
            guard let lossBits = saved.metadata["trainer.loss_since_log_bits"].flatMap({ UInt64($0) }) else {
                throw mismatch("its metadata lacks trainer.loss_since_log_bits")
            }
            position.lossSinceLog = Double(bitPattern: lossBits)
            position.stepsSinceLog = try integer("trainer.steps_since_log")
            guard position.step == step else { throw mismatch("its files say step \(position.step), its name step \(step)") }
            return position
        }
    }
}
