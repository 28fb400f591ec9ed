// The checkpoint reader (safetensors: header length, JSON header, tensor data): any bytes
// decode or throw, never trap.
import FuzzDriver
import Training

fuzz { data, size in
    _ = try? SafeTensors(decoding: bytes(data, size), path: "input")
    return 0
}
