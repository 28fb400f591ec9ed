// zlib, for reading the gzip-compressed IDX files of Fashion-MNIST.
#ifndef DLION_CZLIB_SHIM_H
#define DLION_CZLIB_SHIM_H
#include <zlib.h>
#endif
