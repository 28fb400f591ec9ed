// The IDX decoder (Fashion-MNIST's format): any bytes decode or throw, never trap.
import FuzzDriver
import Training

fuzz { data, size in
    _ = try? IDXFile(decoding: bytes(data, size), path: "input")
    return 0
}
