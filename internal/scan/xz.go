package scan

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// The xz container is read here, and only its LZMA2 data by ulikunitz/xz/lzma, because the
// LZMA2 decoder allocates the whole dictionary a block header asks for (up to 4 GiB) before
// reading a byte: a hundred-byte file could make the scanner allocate gigabytes. Block
// headers are checked against xzMaxDict first. Integrity checks (CRC-32, CRC-64, SHA-256) are
// skipped, not verified: content a loader would reject as corrupt is scanned all the same.
// Format: https://tukaani.org/xz/xz-file-format.txt.

// xzMaxDict is the largest dictionary the scanner allocates. xz's presets use at most 64 MiB
// (-9, -9e); larger ones take an explicit --lzma2=dict= and are not how models ship.
const xzMaxDict = 256 << 20

var errXZDictionary = errors.New("xz: dictionary larger than the scanner allows")

type xzReader struct {
	r        *countingByteReader
	maxDict  int64
	check    int // bytes of the integrity check after each block
	block    io.Reader
	blockAt  int64 // offset of the current block's header
	inStream bool
	err      error
}

func newXZReader(r io.Reader, maxDict int64) *xzReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	return &xzReader{r: &countingByteReader{r: br}, maxDict: maxDict}
}

// countingByteReader counts what the LZMA2 decoder consumes, to find the block padding.
type countingByteReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingByteReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingByteReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

func (x *xzReader) Read(p []byte) (int, error) {
	for x.err == nil {
		if x.block != nil {
			n, err := x.block.Read(p)
			if err == io.EOF {
				x.block, err = nil, x.endBlock()
			}
			if err != nil {
				x.err = err
			}
			if n > 0 || err != nil {
				return n, err
			}
			continue
		}
		if !x.inStream {
			x.err = x.startStream()
			continue
		}
		x.err = x.nextBlock()
	}
	return 0, x.err
}

func (x *xzReader) full(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(x.r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// startStream reads a stream header, after any stream padding; a clean end of input after a
// stream is the end of the file.
func (x *xzReader) startStream() error {
	for {
		b, err := x.r.ReadByte()
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return err
		}
		if b != 0 {
			x.r.r.UnreadByte()
			x.r.n--
			break
		}
	}
	h, err := x.full(12)
	if err != nil {
		return err
	}
	if string(h[:6]) != "\xfd7zXZ\x00" || h[6] != 0 || h[7] > 0x0f {
		return errors.New("xz: bad stream header")
	}
	if t := h[7]; t == 0 {
		x.check = 0
	} else {
		x.check = 4 << ((t - 1) / 3) // 1-3: 4 bytes, 4-6: 8, 7-9: 16, 10-12: 32, 13-15: 64
	}
	x.inStream = true
	return nil
}

// nextBlock reads a block header and starts its LZMA2 decoder, or reads the index and the
// stream footer when the stream has no more blocks.
func (x *xzReader) nextBlock() error {
	x.blockAt = x.r.n
	size, err := x.r.ReadByte()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if size == 0 {
		return x.endStream()
	}
	rest, err := x.full(int(size)*4 + 3)
	if err != nil {
		return err
	}
	hdr := bytes.NewReader(rest[:len(rest)-4]) // the CRC-32 closes the header
	flags, _ := hdr.ReadByte()
	if flags&0x3c != 0 || flags&0x03 != 0 {
		return errors.New("xz: only a single LZMA2 filter is supported")
	}
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} { // compressed, uncompressed size
		if present {
			if _, err := binary.ReadUvarint(hdr); err != nil {
				return errors.New("xz: bad block header")
			}
		}
	}
	id, err1 := binary.ReadUvarint(hdr)
	propsLen, err2 := binary.ReadUvarint(hdr)
	prop, err3 := hdr.ReadByte()
	if err1 != nil || err2 != nil || err3 != nil || id != 0x21 || propsLen != 1 {
		return errors.New("xz: only a single LZMA2 filter is supported")
	}
	dict, err := lzma.DecodeDictCap(prop)
	if err != nil {
		return err
	}
	if dict > x.maxDict {
		return fmt.Errorf("%w: a block asks for %d bytes, the limit is %d", errXZDictionary, dict, x.maxDict)
	}
	x.block, err = lzma.Reader2Config{DictCap: int(max(dict, lzma.MinDictCap))}.NewReader2(x.r)
	return err
}

// endBlock skips the block padding (to a multiple of four bytes) and the integrity check.
func (x *xzReader) endBlock() error {
	pad := (4 - (x.r.n-x.blockAt)%4) % 4
	_, err := x.full(int(pad) + x.check)
	return err
}

// endStream reads the index (after its zero indicator byte) and the stream footer.
func (x *xzReader) endStream() error {
	count, err := binary.ReadUvarint(x.r)
	if err != nil {
		return io.ErrUnexpectedEOF
	}
	for range count * 2 {
		if _, err := binary.ReadUvarint(x.r); err != nil {
			return io.ErrUnexpectedEOF
		}
	}
	pad := (4 - (x.r.n-x.blockAt)%4) % 4
	tail, err := x.full(int(pad) + 4 + 12) // padding, the index's CRC-32, the footer
	if err != nil {
		return err
	}
	if string(tail[len(tail)-2:]) != "YZ" {
		return errors.New("xz: bad stream footer")
	}
	x.inStream = false
	return nil
}
