package opus

/*
#cgo pkg-config: opus
#include <opus.h>

static OpusEncoder *vg_enc(int rate, int complexity) {
	int err;
	OpusEncoder *e = opus_encoder_create(rate, 1, OPUS_APPLICATION_VOIP, &err);
	if (err != OPUS_OK) return 0;
	opus_encoder_ctl(e, OPUS_SET_COMPLEXITY(complexity));
	return e;
}
static OpusDecoder *vg_dec(int rate) {
	int err;
	OpusDecoder *d = opus_decoder_create(rate, 1, &err);
	return err == OPUS_OK ? d : 0;
}
*/
import "C"

import "unsafe"

// directCodec calls libopus without any wrapper, as the yardstick the
// wrapper's benchmarks compare against.
type directCodec struct {
	enc *C.OpusEncoder
	dec *C.OpusDecoder
}

func newDirect(rate, complexity int) *directCodec {
	return &directCodec{enc: C.vg_enc(C.int(rate), C.int(complexity)), dec: C.vg_dec(C.int(rate))}
}

func (c *directCodec) encode(pcm []int16, out []byte) int {
	return int(C.opus_encode(c.enc, (*C.opus_int16)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)),
		(*C.uchar)(unsafe.Pointer(&out[0])), C.opus_int32(len(out))))
}

func (c *directCodec) decode(data []byte, pcm []int16) int {
	return int(C.opus_decode(c.dec, (*C.uchar)(unsafe.Pointer(&data[0])), C.opus_int32(len(data)),
		(*C.opus_int16)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)), 0))
}

func (c *directCodec) close() {
	C.opus_encoder_destroy(c.enc)
	C.opus_decoder_destroy(c.dec)
}
