import Collectives

extension Communicator {
    /// Runs `body`, which may fail on some ranks only, then agrees on every rank whether it
    /// succeeded everywhere (one 4-byte `MPI_Allreduce`): a rank that failed throws its own
    /// error, the others ``TrainingError/failedElsewhere(ranks:what:)``, so no rank goes on to
    /// wait in a collective that a failed one never reaches. `body` must make no collective
    /// call itself.
    public func agreeOnSuccess<Value>(_ what: String, _ body: () throws -> Value) throws -> Value {
        let outcome = Result<Value, Error> { try body() }
        let failed: Int32 = if case .failure = outcome { 1 } else { 0 }
        let failures = try allreduce([failed], operation: .sum)[0]
        let value = try outcome.get()
        if failures > 0 { throw TrainingError.failedElsewhere(ranks: Int(failures), what: what) }
        return value
    }
}
