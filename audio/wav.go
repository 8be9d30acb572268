package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Errors returned by the WAV reader.
var (
	ErrNotWAV         = errors.New("not a RIFF/WAVE file")
	ErrUnsupportedWAV = errors.New("unsupported WAV format")
)

// WAV holds mono (or the first channel of multi-channel) 16-bit PCM.
type WAV struct {
	Rate    int
	Samples []int16
}

// ReadWAVFile reads a PCM16 or G.711 WAV file.
func ReadWAVFile(path string) (*WAV, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w, err := ReadWAV(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return w, nil
}

// ReadWAV reads a 16-bit PCM, mu-law or A-law WAV stream, keeping the first
// channel. A data chunk with a zero or oversized length (a file whose writer
// was killed) is read to the end of the stream.
func ReadWAV(r io.Reader) (*WAV, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, ErrNotWAV
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, ErrNotWAV
	}
	var format, channels, bits uint16
	var rate uint32
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return nil, fmt.Errorf("%w: no data chunk", ErrNotWAV)
		}
		id := string(ch[0:4])
		size := binary.LittleEndian.Uint32(ch[4:8])
		switch id {
		case "fmt ":
			if size > 256 {
				return nil, fmt.Errorf("%w: fmt chunk of %d bytes", ErrNotWAV, size)
			}
			b := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, b); err != nil || size < 16 {
				return nil, fmt.Errorf("%w: short fmt chunk", ErrNotWAV)
			}
			format = binary.LittleEndian.Uint16(b[0:2])
			channels = binary.LittleEndian.Uint16(b[2:4])
			rate = binary.LittleEndian.Uint32(b[4:8])
			bits = binary.LittleEndian.Uint16(b[14:16])
			if format == 0xFFFE && size >= 26 { // WAVE_FORMAT_EXTENSIBLE: sub-format GUID starts with the tag
				format = binary.LittleEndian.Uint16(b[24:26])
			}
		case "data":
			if channels == 0 {
				return nil, fmt.Errorf("%w: data before fmt", ErrNotWAV)
			}
			data, err := io.ReadAll(io.LimitReader(r, int64(size)))
			if err != nil {
				return nil, err
			}
			if size == 0 || size == 0xFFFFFFFF {
				rest, _ := io.ReadAll(r)
				data = append(data, rest...)
			}
			return decodeWAVData(format, int(channels), int(bits), int(rate), data)
		default:
			if _, err := io.CopyN(io.Discard, r, int64(size+size%2)); err != nil {
				return nil, fmt.Errorf("%w: truncated chunk %q", ErrNotWAV, id)
			}
		}
	}
}

func decodeWAVData(format uint16, channels, bits, rate int, data []byte) (*WAV, error) {
	w := &WAV{Rate: rate}
	switch {
	case format == 1 && bits == 16:
		step := 2 * channels
		w.Samples = make([]int16, 0, len(data)/step)
		for i := 0; i+1 < len(data); i += step {
			w.Samples = append(w.Samples, int16(binary.LittleEndian.Uint16(data[i:])))
		}
	case (format == 6 || format == 7) && bits == 8:
		w.Samples = make([]int16, 0, len(data)/channels)
		for i := 0; i < len(data); i += channels {
			if format == 7 {
				w.Samples = append(w.Samples, ulawDecode[data[i]])
			} else {
				w.Samples = append(w.Samples, alawDecode[data[i]])
			}
		}
	default:
		return nil, fmt.Errorf("%w: format %d, %d bits", ErrUnsupportedWAV, format, bits)
	}
	return w, nil
}

// WriteWAVFile writes mono 16-bit PCM to path.
func WriteWAVFile(path string, rate int, pcm []int16) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteWAV(f, rate, pcm); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteWAV writes a mono 16-bit PCM WAV stream.
func WriteWAV(w io.Writer, rate int, pcm []int16) error {
	b := make([]byte, 44+2*len(pcm))
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*len(pcm)))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], 1)
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*2))
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*len(pcm)))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(s))
	}
	_, err := w.Write(b)
	return err
}

// WAVWriter streams mono 16-bit PCM to a WAV file. The header's sizes are
// rewritten at least every second and on Close, so a file cut off by a
// crash is valid up to its last second (and ReadWAV reads past a stale
// size anyway).
type WAVWriter struct {
	f       *os.File
	rate    int
	samples int64
	buf     []byte
	synced  time.Time
}

// NewWAVWriter creates path and writes a header.
func NewWAVWriter(path string, rate int) (*WAVWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := &WAVWriter{f: f, rate: rate, buf: make([]byte, 0, 4096), synced: time.Now()}
	if err := WriteWAV(f, rate, nil); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// Write appends samples.
func (w *WAVWriter) Write(pcm []int16) error {
	w.buf = w.buf[:0]
	for _, s := range pcm {
		w.buf = binary.LittleEndian.AppendUint16(w.buf, uint16(s))
	}
	if _, err := w.f.Write(w.buf); err != nil {
		return err
	}
	w.samples += int64(len(pcm))
	if time.Since(w.synced) > time.Second {
		return w.sync()
	}
	return nil
}

// sync rewrites the RIFF and data sizes for what has been written so far.
func (w *WAVWriter) sync() error {
	w.synced = time.Now()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(36+2*w.samples))
	if _, err := w.f.WriteAt(b[:], 4); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[:], uint32(2*w.samples))
	_, err := w.f.WriteAt(b[:], 40)
	return err
}

// Close finalises the header and closes the file.
func (w *WAVWriter) Close() error {
	err := w.sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}
