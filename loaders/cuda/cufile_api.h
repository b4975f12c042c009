/* The part of NVIDIA's cuFile (GPUDirect Storage) C API that ckptbench uses,
 * declared from its documented ABI (cufile.h, "cuFile API Reference Guide")
 * so that neither the header nor the library is needed to build: the library
 * is opened at run time (cufile.h in this directory). Only what is declared
 * here is relied on; struct layouts we do not use are never declared.
 */
#ifndef CB_CUFILE_API_H
#define CB_CUFILE_API_H

#include <stddef.h>
#include <sys/types.h>

/* CUfileOpError; 0 is CU_FILE_SUCCESS, errors are 5000 and up. */
typedef int CUfileOpError;
#define CU_FILE_SUCCESS 0

/* CUfileError_t: returned by value (two ints, so in registers). cu_err is
 * the CUresult behind a CU_FILE_CUDA_DRIVER_ERROR. */
typedef struct CUfileError {
	CUfileOpError err;
	int cu_err;
} CUfileError_t;

/* CUfileFileHandleType */
#define CU_FILE_HANDLE_TYPE_OPAQUE_FD 1

typedef struct CUfileDescr {
	int type; /* CUfileFileHandleType */
	union {
		int fd;
		void *handle;
	} handle;
	const void *fs_ops; /* const CUfileFSOps_t *; NULL for files */
} CUfileDescr_t;

typedef void *CUfileHandle_t;

typedef CUfileError_t (*cb_cuFileDriverOpen_fn)(void);
typedef CUfileError_t (*cb_cuFileDriverClose_fn)(void);
typedef CUfileError_t (*cb_cuFileHandleRegister_fn)(CUfileHandle_t *fh, CUfileDescr_t *descr);
typedef void (*cb_cuFileHandleDeregister_fn)(CUfileHandle_t fh);
typedef CUfileError_t (*cb_cuFileBufRegister_fn)(const void *dev_base, size_t length, int flags);
typedef CUfileError_t (*cb_cuFileBufDeregister_fn)(const void *dev_base);
/* Bytes read, or -1 with errno, or -CUfileOpError. */
typedef ssize_t (*cb_cuFileRead_fn)(CUfileHandle_t fh, void *dev_base, size_t size,
				    off_t file_offset, off_t dev_offset);

#endif
