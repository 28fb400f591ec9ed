// The declaration in include/CFuzzer.h is all; libFuzzer defines it.
