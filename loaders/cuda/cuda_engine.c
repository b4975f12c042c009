/* The pipeline's CUDA copy engine (see gpu.h). CUDA builds only. */
#include <stdlib.h>

#include "gpu.h"

struct cuda_slot {
	cudaStream_t stream;
	cudaEvent_t done;
	bool stream_ok, event_ok;
};

struct cuda_engine {
	struct cb_gpu *gpu;
	struct cuda_slot *slots;
	size_t n_slots;
};

static int ce_thread_init(void *impl, struct cb_error *err)
{
	struct cuda_engine *c = impl;
	CB_CUDA_TRY(err, cudaSetDevice(c->gpu->device));
	return CB_OK;
}

static int ce_slot_init(void *impl, size_t slot, size_t bytes, void **buf, struct cb_error *err)
{
	struct cuda_engine *c = impl;
	struct cuda_slot *s = &c->slots[slot];
	*buf = NULL;
	CB_CUDA_TRY(err, cudaSetDevice(c->gpu->device));
	if (bytes) /* 0: the map source, which copies from pinned mappings */
		CB_CUDA_TRY(err, cudaHostAlloc(buf, bytes, cudaHostAllocPortable));
	CB_CUDA_TRY(err, cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
	s->stream_ok = true;
	/* No timing: a lighter event, and cudaEventSynchronize may yield. */
	CB_CUDA_TRY(err, cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming));
	s->event_ok = true;
	return CB_OK;
}

static int ce_copy(void *impl, size_t slot, void *dst, const void *src, size_t len,
		   struct cb_error *err)
{
	struct cuda_engine *c = impl;
	CB_CUDA_TRY(err,
		    cudaMemcpyAsync(dst, src, len, cudaMemcpyHostToDevice, c->slots[slot].stream));
	return CB_OK;
}

static int ce_fence(void *impl, size_t slot, struct cb_error *err)
{
	struct cuda_engine *c = impl;
	CB_CUDA_TRY(err, cudaEventRecord(c->slots[slot].done, c->slots[slot].stream));
	return CB_OK;
}

static int ce_wait(void *impl, size_t slot, struct cb_error *err)
{
	struct cuda_engine *c = impl;
	/* The stream, not only the event: a failed fence leaves copies that
	 * no event covers, and the buffer must be free either way. */
	CB_CUDA_TRY(err, cudaStreamSynchronize(c->slots[slot].stream));
	return CB_OK;
}

/* The page cache, mapped read-only, is locked and mapped for the device's
 * DMA. Read-only registration is what lets a PROT_READ mapping be pinned
 * at all (the driver would otherwise ask for write access). */
static int ce_pin(void *impl, size_t slot, void *addr, size_t len, struct cb_error *err)
{
	(void)impl, (void)slot;
	CB_CUDA_TRY(err, cudaHostRegister(addr, len, cudaHostRegisterReadOnly));
	return CB_OK;
}

static void ce_unpin(void *impl, size_t slot, void *addr)
{
	(void)impl, (void)slot;
	cudaHostUnregister(addr);
}

static void ce_slot_fini(void *impl, size_t slot, void *buf)
{
	struct cuda_engine *c = impl;
	struct cuda_slot *s = &c->slots[slot];
	if (s->stream_ok)
		cudaStreamSynchronize(s->stream);
	if (s->event_ok)
		cudaEventDestroy(s->done);
	if (s->stream_ok)
		cudaStreamDestroy(s->stream);
	if (buf)
		cudaFreeHost(buf);
	*s = (struct cuda_slot){0};
}

static const struct cb_copy_engine_ops cuda_ops = {
	.name = "cuda",
	.thread_init = ce_thread_init,
	.slot_init = ce_slot_init,
	.copy = ce_copy,
	.fence = ce_fence,
	.wait = ce_wait,
	.slot_fini = ce_slot_fini,
	.pin = ce_pin,
	.unpin = ce_unpin,
};

int cb_cuda_engine_new(struct cb_gpu *g, size_t n_slots, struct cb_copy_engine *out,
		       struct cb_error *err)
{
	struct cuda_engine *c = calloc(1, sizeof *c);
	if (c)
		c->slots = calloc(n_slots ? n_slots : 1, sizeof *c->slots);
	if (!c || !c->slots) {
		free(c);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	c->gpu = g;
	c->n_slots = n_slots;
	*out = (struct cb_copy_engine){.ops = &cuda_ops, .impl = c};
	return CB_OK;
}

void cb_cuda_engine_free(struct cb_copy_engine *engine)
{
	struct cuda_engine *c = engine->impl;
	if (!c)
		return;
	free(c->slots);
	free(c);
	engine->impl = NULL;
}
