package scan

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// A minimal HDF5 reader, written from the HDF5 File Format Specification (version 3.0): the
// superblock (versions 0 to 3), the root group's object header (versions 1 and 2, with
// continuation blocks), and its attribute messages (versions 1 to 3) holding a string, fixed
// length or variable length (read from the global heap). That is where Keras keeps a legacy
// .h5 model's description (model_config, training_config). Datasets, B-trees and the
// fractal heap are never read: weights are data, and only the config names code.

var magicHDF5 = []byte("\x89HDF\r\n\x1a\n")

// hdf5ConfigAttrs are the root attributes Keras reads a model from.
var hdf5ConfigAttrs = map[string]bool{"model_config": true, "training_config": true}

const (
	hdf5MaxChunk    = 16 << 20 // largest object-header block read
	hdf5MaxBlocks   = 64       // continuation blocks followed
	hdf5MaxMessages = 1 << 16
	hdf5MaxHeap     = 64 << 20 // largest global heap collection read for a string
)

var errHDF5Truncated = errors.New("the file ends inside a structure")

type hdf5File struct {
	r              io.ReaderAt
	size           int64
	sbOff          int64 // where the superblock is: 0, or past a user block (512, 1024, ...)
	offSize        int   // bytes per address
	lenSize        int   // bytes per length
	base           uint64
	attrs          map[string]string // root attributes read as strings
	unreadable     map[string]error  // root attributes that exist but could not be read, and why
	denseAttrs     bool
	sharedMessages bool
}

func (h *hdf5File) read(off uint64, n int) ([]byte, error) {
	if n < 0 || off > uint64(h.size) || uint64(n) > uint64(h.size)-off {
		return nil, fmt.Errorf("%d bytes at offset %d: %w", n, off, errHDF5Truncated)
	}
	b := make([]byte, n)
	if !readFull(h.r, b, int64(off)) {
		return nil, errHDF5Truncated
	}
	return b, nil
}

// uint reads a little-endian unsigned integer of 2, 4 or 8 bytes.
func hdf5Uint(b []byte) uint64 {
	switch len(b) {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	case 8:
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// cursor reads fields from a byte slice, remembering the first overrun.
type cursor struct {
	b   []byte
	pos int
	err error
}

func (c *cursor) take(n int) []byte {
	if c.err != nil || n < 0 || n > len(c.b)-c.pos {
		if c.err == nil {
			c.err = errHDF5Truncated
		}
		return make([]byte, max(n, 0))
	}
	v := c.b[c.pos : c.pos+n]
	c.pos += n
	return v
}

func (c *cursor) uint(n int) uint64 { return hdf5Uint(c.take(n)) }

// rootHeader parses the superblock and returns the root group's object header address.
func (h *hdf5File) rootHeader() (uint64, error) {
	sb, err := h.read(uint64(h.sbOff), int(min(h.size-h.sbOff, 96)))
	if err != nil {
		return 0, err
	}
	c := &cursor{b: sb, pos: 8}
	version := c.uint(1)
	var root uint64
	switch version {
	case 0, 1:
		c.take(4) // free-space, root symbol table and shared-header versions, reserved
		h.offSize, h.lenSize = int(c.uint(1)), int(c.uint(1))
		c.take(1)
		c.take(8) // group leaf and internal node K, consistency flags
		if version == 1 {
			c.take(4) // indexed storage internal node K, reserved
		}
		if !validSize(h.offSize) || !validSize(h.lenSize) {
			return 0, fmt.Errorf("superblock gives %d-byte addresses and %d-byte lengths", h.offSize, h.lenSize)
		}
		h.base = c.uint(h.offSize)
		c.take(3 * h.offSize) // free-space info, end of file, driver info addresses
		c.take(h.offSize)     // root symbol table entry: link name offset
		root = c.uint(h.offSize)
	case 2, 3:
		h.offSize, h.lenSize = int(c.uint(1)), int(c.uint(1))
		c.take(1) // consistency flags
		if !validSize(h.offSize) || !validSize(h.lenSize) {
			return 0, fmt.Errorf("superblock gives %d-byte addresses and %d-byte lengths", h.offSize, h.lenSize)
		}
		h.base = c.uint(h.offSize)
		c.take(2 * h.offSize) // superblock extension, end of file
		root = c.uint(h.offSize)
	default:
		return 0, fmt.Errorf("superblock version %d is not one the specification defines", version)
	}
	if c.err != nil {
		return 0, c.err
	}
	return h.base + root, nil
}

func validSize(n int) bool { return n == 2 || n == 4 || n == 8 }

// hdf5Block is a run of header messages still to read.
type hdf5Block struct {
	addr, n uint64
	version int // object header version the messages are encoded in
}

// rootAttributes reads every attribute message of the object header at addr.
func (h *hdf5File) rootAttributes(addr uint64) error {
	head, err := h.read(addr, min(int(uint64(h.size)-min(addr, uint64(h.size))), 64))
	if err != nil {
		return err
	}
	var queue []hdf5Block
	v2Flags := byte(0)
	switch {
	case bytes.HasPrefix(head, []byte("OHDR")):
		c := &cursor{b: head, pos: 4}
		if v := c.uint(1); v != 2 {
			return fmt.Errorf("object header version %d with an OHDR signature", v)
		}
		v2Flags = c.take(1)[0]
		if v2Flags&0x20 != 0 {
			c.take(16) // access, modification, change, birth times
		}
		if v2Flags&0x10 != 0 {
			c.take(4) // attribute phase change values
		}
		size := c.uint(1 << (v2Flags & 3))
		if c.err != nil {
			return c.err
		}
		queue = append(queue, hdf5Block{addr + uint64(c.pos), size, 2})
	case len(head) >= 16 && head[0] == 1:
		size := hdf5Uint(head[8:12])
		queue = append(queue, hdf5Block{addr + 16, size, 1})
	default:
		return fmt.Errorf("no object header at offset %d", addr)
	}
	messages := 0
	for i := 0; i < len(queue); i++ {
		if i >= hdf5MaxBlocks {
			return fmt.Errorf("more than %d object header continuation blocks", hdf5MaxBlocks)
		}
		blk := queue[i]
		if blk.n > hdf5MaxChunk {
			return fmt.Errorf("an object header block of %d bytes (the limit is %d)", blk.n, hdf5MaxChunk)
		}
		b, err := h.read(blk.addr, int(blk.n))
		if err != nil {
			return err
		}
		c := &cursor{b: b}
		if blk.version == 2 && i > 0 {
			// A continuation block's length counts its signature and checksum; chunk 0's
			// size counts neither (its checksum follows it).
			if !bytes.HasPrefix(b, []byte("OCHK")) {
				return fmt.Errorf("continuation block at offset %d lacks its OCHK signature", blk.addr)
			}
			c.pos = 4
			c.b = b[:max(len(b)-4, c.pos)]
		}
		for c.err == nil && len(c.b)-c.pos >= hdf5MessageHeader(blk.version, v2Flags) {
			if messages++; messages > hdf5MaxMessages {
				return fmt.Errorf("more than %d header messages", hdf5MaxMessages)
			}
			var typ, size uint64
			var flags byte
			if blk.version == 1 {
				typ, size = c.uint(2), c.uint(2)
				flags = c.take(1)[0]
				c.take(3)
			} else {
				typ, size = c.uint(1), c.uint(2)
				flags = c.take(1)[0]
				if v2Flags&0x04 != 0 {
					c.take(2) // creation order
				}
			}
			data := c.take(int(size))
			if c.err != nil {
				return fmt.Errorf("a header message of %d bytes runs past its block: %w", size, errHDF5Truncated)
			}
			if flags&0x02 != 0 && (typ == 0x0c || typ == 0x10) {
				h.sharedMessages = true
				continue
			}
			switch typ {
			case 0x10: // continuation: offset, length
				d := &cursor{b: data}
				off, n := d.uint(h.offSize), d.uint(h.lenSize)
				if d.err != nil {
					return d.err
				}
				queue = append(queue, hdf5Block{h.base + off, n, blk.version})
			case 0x15: // attribute info: attributes in dense storage (a fractal heap)
				h.denseAttrs = true
			case 0x0c:
				h.attribute(data)
			}
		}
	}
	return nil
}

func hdf5MessageHeader(version int, flags byte) int {
	if version == 1 {
		return 8
	}
	if flags&0x04 != 0 {
		return 6
	}
	return 4
}

// attribute reads one attribute message, keeping its value when it is a single string.
func (h *hdf5File) attribute(data []byte) {
	c := &cursor{b: data}
	version := c.uint(1)
	flags := c.take(1)[0]
	nameSize, dtSize, dsSize := int(c.uint(2)), int(c.uint(2)), int(c.uint(2))
	pad := func(n int) int { return n }
	switch version {
	case 1:
		pad = func(n int) int { return (n + 7) &^ 7 }
	case 3:
		c.take(1) // name character set
	case 2:
	default:
		h.unreadable[fmt.Sprintf("(attribute message version %d)", version)] = errors.New("unknown attribute message version")
		return
	}
	name := strings.TrimRight(string(c.take(pad(nameSize))[:nameSize]), "\x00")
	dt := c.take(pad(dtSize))
	ds := c.take(pad(dsSize))
	value := c.b[min(c.pos, len(c.b)):]
	switch {
	case c.err != nil:
		h.unreadable[name] = fmt.Errorf("its message is shorter than its fields: %w", errHDF5Truncated)
		return
	case version > 1 && flags&0x03 != 0:
		h.unreadable[name] = errors.New("its datatype or dataspace is shared")
		return
	case len(dt) < 8 || len(ds) < 2:
		h.unreadable[name] = errors.New("its datatype or dataspace is too short")
		return
	}
	if ds[1] > 1 || !hdf5ConfigAttrs[name] {
		// An array is not a config string; other attributes are not read at all, so a file of
		// many attributes pointing at one large heap costs one read, not one each.
		return
	}
	if _, seen := h.attrs[name]; seen {
		h.unreadable[name] = errors.New("the attribute is given twice")
		return
	}
	s, ok, err := h.stringValue(dt[:dtSize], value)
	switch {
	case err != nil:
		h.unreadable[name] = err
	case ok:
		h.attrs[name] = s
	}
}

// stringValue decodes an attribute value of string type: fixed length (class 3) or a
// variable-length string (class 9, kind 1) whose bytes are in a global heap collection.
func (h *hdf5File) stringValue(dt, value []byte) (string, bool, error) {
	class := dt[0] & 0x0f
	size := int(binary.LittleEndian.Uint32(dt[4:8]))
	switch {
	case class == 3:
		if size > len(value) {
			return "", false, errHDF5Truncated
		}
		return strings.TrimRight(string(value[:size]), "\x00 "), true, nil
	case class == 9 && dt[1]&0x0f == 1:
		c := &cursor{b: value}
		n := c.uint(4)
		heap := c.uint(h.offSize)
		index := c.uint(4)
		if c.err != nil {
			return "", false, c.err
		}
		s, err := h.globalHeapObject(h.base+heap, index, n)
		return s, err == nil, err
	}
	return "", false, nil
}

// globalHeapObject reads object index of the global heap collection at addr.
func (h *hdf5File) globalHeapObject(addr, index, want uint64) (string, error) {
	head, err := h.read(addr, 8+h.lenSize)
	if err != nil {
		return "", err
	}
	if string(head[:4]) != "GCOL" {
		return "", fmt.Errorf("no global heap at offset %d", addr)
	}
	size := hdf5Uint(head[8:])
	if size > hdf5MaxHeap || size < uint64(len(head)) {
		return "", fmt.Errorf("global heap collection of %d bytes", size)
	}
	b, err := h.read(addr, int(size))
	if err != nil {
		return "", err
	}
	c := &cursor{b: b, pos: len(head)}
	for c.err == nil && len(b)-c.pos >= 8+h.lenSize {
		idx := c.uint(2)
		c.take(6) // reference count, reserved
		n := c.uint(h.lenSize)
		if idx == 0 { // free space ends the collection
			break
		}
		if n > uint64(len(b)-c.pos) {
			return "", errHDF5Truncated
		}
		obj := c.take(int(n))
		c.take(int((n+7)&^7 - n))
		if idx == index {
			if want < n {
				obj = obj[:want]
			}
			return string(obj), nil
		}
	}
	return "", fmt.Errorf("global heap object %d is not in its collection", index)
}

// scanHDF5 reads the root group's attributes and judges a Keras model config among them.
func scanHDF5(r io.ReaderAt, size int64, rep *Report, member string) Format {
	return scanHDF5At(r, size, 0, rep, member)
}

// hdf5UserBlock finds an HDF5 signature after a user block: the library looks for it at
// offset 0, 512, 1024, 2048 and so on (h5py.is_hdf5, and so tf.keras's load_model, accept
// such files whatever they are called). It returns 0 when there is none past 0.
func hdf5UserBlock(r io.ReaderAt, size int64) int64 {
	var sig [8]byte
	for off := int64(512); off+8 <= size; off *= 2 {
		if readFull(r, sig[:], off) && bytes.Equal(sig[:], magicHDF5) {
			return off
		}
	}
	return 0
}

// scanHDF5At is scanHDF5 for a superblock at sbOff.
func scanHDF5At(r io.ReaderAt, size, sbOff int64, rep *Report, member string) Format {
	h := &hdf5File{r: r, size: size, sbOff: sbOff, attrs: map[string]string{}, unreadable: map[string]error{}}
	bad := func(rule string, class error, format string, args ...any) {
		rep.add(Finding{Verdict: Suspicious, Member: member, Offset: -1, Rule: rule, Message: fmt.Sprintf(format, args...), Err: class})
	}
	root, err := h.rootHeader()
	if err == nil {
		err = h.rootAttributes(root)
	}
	if err != nil {
		class := ErrMalformed
		if errors.Is(err, errHDF5Truncated) {
			class = ErrTruncated
		}
		bad("hdf5.malformed", class, "the HDF5 file cannot be read: %v", err)
		return FormatHDF5
	}
	format := FormatHDF5
	for _, name := range []string{"model_config", "training_config"} {
		s, ok := h.attrs[name]
		if !ok {
			continue
		}
		v, err := decodeJSON(strings.NewReader(s), int64(len(s)))
		if err != nil {
			bad("hdf5.keras-config", ErrMalformed, "the root attribute %s is not JSON: %v", name, err)
			continue
		}
		if name == "model_config" {
			format = FormatKerasH5
		}
		judgeKerasConfig(v, rep, member, "attribute "+name)
	}
	for _, name := range slices.Sorted(maps.Keys(h.unreadable)) {
		if err := h.unreadable[name]; name == "model_config" || name == "training_config" || strings.HasPrefix(name, "(") {
			rule, class := "hdf5.unsupported", ErrUnsupported
			if errors.Is(err, errHDF5Truncated) {
				rule, class = "hdf5.malformed", ErrTruncated
			}
			bad(rule, class, "the root attribute %s cannot be read (%v), so the model config cannot be checked", name, err)
		}
	}
	if format == FormatHDF5 && (h.denseAttrs || h.sharedMessages) {
		bad("hdf5.unsupported", ErrUnsupported, "the root group keeps its attributes in dense or shared storage, which this reader does not decode: a Keras model config there cannot be checked")
	}
	return format
}
