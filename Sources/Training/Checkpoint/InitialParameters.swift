import Collectives
#if canImport(Glibc)
import Glibc
#endif

extension Checkpointer {
    /// Loads a saved model's parameters into `arena` — no optimizer state, no position — to
    /// start a new run from a trained model: with another optimizer, rank count, schedule or
    /// data. `path` is a `model.safetensors` file, a checkpoint (`…/step-00000120`), or a
    /// checkpoint directory (its newest complete checkpoint). Collective: rank 0 reads the
    /// file and broadcasts the parameters, so only rank 0 needs to see it and every replica
    /// starts the same. Returns the file read.
    ///
    /// The file must hold exactly the model's tensors, by name and shape; otherwise every rank
    /// throws, saying which differ. (A checkpoint saved mid-round by Local AdamW holds rank 0's
    /// replica.)
    @discardableResult
    public static func loadParameters(from path: String, into arena: ParameterArena, communicator: Communicator) throws -> String {
        let file = modelFile(at: path)
        try communicator.agreeOnSuccess("reading the initial parameters") {
            guard communicator.rank == 0 else { return }
            guard access(file, F_OK) == 0 else {
                throw TrainingError.invalidConfiguration("no saved model at \(path): name a model.safetensors, a checkpoint (step-…) or a checkpoint directory")
            }
            let model = try SafeTensors(decoding: Files.read(file), path: file)
            let expected = Set(arena.slots.map(\.name))
            let extra = model.tensors.map(\.name).filter { !expected.contains($0) }
            var differences = extra.isEmpty ? [] : ["it holds tensors the model lacks: \(extra.joined(separator: ", "))"]
            for slot in arena.slots {
                if let tensor = model[slot.name], tensor.shape == slot.shape {
                    _ = arena.parameters(slot).update(fromContentsOf: tensor.values)
                } else {
                    differences.append("\(slot.name) is \(model[slot.name].map { "\($0.shape)" } ?? "missing") there, \(slot.shape) in the model")
                }
            }
            guard differences.isEmpty else {
                throw TrainingError.checkpointMismatch(path: file, reason: differences.joined(separator: "; ") + "; build the model it was saved from")
            }
        }
        try communicator.broadcast(arena.parameters, root: 0)
        return file
    }

    /// The model file `path` names: the file itself, the `model.safetensors` of a checkpoint,
    /// or that of the newest complete checkpoint in a checkpoint directory.
    private static func modelFile(at path: String) -> String {
        guard let names = Files.names(in: path) else { return path }
        if names.contains("model.safetensors") { return "\(path)/model.safetensors" }
        return completeSteps(in: path).last.map { "\(path)/\(name(step: $0))/model.safetensors" } ?? "\(path)/model.safetensors"
    }
}
