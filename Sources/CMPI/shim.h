// Open MPI's predefined handles, made importable.
//
// Open MPI defines MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE, ... as macros
// over the addresses of library globals; Swift imports no such macro. Each one is
// exposed here as a `static inline` getter that Swift reads as a global variable.
// Nothing else belongs in this file.
#ifndef DLION_CMPI_SHIM_H
#define DLION_CMPI_SHIM_H

#include <mpi.h>

#define DLION_HANDLE(type, name) \
    __attribute__((swift_name("getter:" #name "()"))) \
    static inline type dlion_##name(void) { return name; }

// Communicators.
DLION_HANDLE(MPI_Comm, MPI_COMM_WORLD)
DLION_HANDLE(MPI_Comm, MPI_COMM_SELF)
DLION_HANDLE(MPI_Comm, MPI_COMM_NULL)

// Datatypes.
DLION_HANDLE(MPI_Datatype, MPI_FLOAT)
DLION_HANDLE(MPI_Datatype, MPI_DOUBLE)
DLION_HANDLE(MPI_Datatype, MPI_INT8_T)
DLION_HANDLE(MPI_Datatype, MPI_INT32_T)
DLION_HANDLE(MPI_Datatype, MPI_INT64_T)
DLION_HANDLE(MPI_Datatype, MPI_UINT8_T)
DLION_HANDLE(MPI_Datatype, MPI_UINT32_T)
DLION_HANDLE(MPI_Datatype, MPI_UINT64_T)

// Reduction operations.
DLION_HANDLE(MPI_Op, MPI_SUM)
DLION_HANDLE(MPI_Op, MPI_MAX)
DLION_HANDLE(MPI_Op, MPI_MIN)
DLION_HANDLE(MPI_Op, MPI_BOR)
DLION_HANDLE(MPI_Op, MPI_BAND)

// Requests, special buffers and statuses.
DLION_HANDLE(MPI_Request, MPI_REQUEST_NULL)
DLION_HANDLE(void *, MPI_IN_PLACE)
DLION_HANDLE(MPI_Status *, MPI_STATUS_IGNORE)

// Info objects.
DLION_HANDLE(MPI_Info, MPI_INFO_NULL)

// Error handlers.
DLION_HANDLE(MPI_Errhandler, MPI_ERRORS_RETURN)

#undef DLION_HANDLE

#endif
