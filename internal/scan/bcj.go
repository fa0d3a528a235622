package scan

import "io"

// bcjReader undoes the x86 branch-call-jump filter (7z method 03030103; LZMA SDK Bra86.c)
// that 7-Zip and py7zr put in front of LZMA by default: relative CALL/JMP targets were made
// absolute for better compression, and are turned back here.
type bcjReader struct {
	r     io.Reader
	buf   []byte // decoded bytes not yet returned, then bytes not yet converted
	ready int    // buf[:ready] is converted
	ip    uint32
	state uint32
	eof   bool
	err   error
}

func newBCJReader(r io.Reader) *bcjReader { return &bcjReader{r: r, buf: make([]byte, 0, 64<<10)} }

func (b *bcjReader) Read(p []byte) (int, error) {
	for b.ready == 0 {
		if b.eof {
			if len(b.buf) > 0 { // the last few bytes cannot hold an instruction
				b.ready = len(b.buf)
				break
			}
			return 0, b.err
		}
		if len(b.buf) == cap(b.buf) {
			b.buf = append(make([]byte, 0, 2*cap(b.buf)), b.buf...)
		}
		n, err := b.r.Read(b.buf[len(b.buf):cap(b.buf)])
		b.buf = b.buf[:len(b.buf)+n]
		if err != nil {
			b.eof = true
			if err != io.EOF {
				b.err = err
			} else {
				b.err = io.EOF
			}
		}
		b.ready = x86Convert(b.buf, b.ip, &b.state)
		b.ip += uint32(b.ready)
	}
	n := copy(p, b.buf[:b.ready])
	b.buf = append(b.buf[:0], b.buf[n:]...)
	b.ready -= n
	return n, nil
}

func test86MSByte(b byte) bool { return (b+1)&0xfe == 0 }

// x86Convert decodes data in place and returns how many leading bytes are final.
func x86Convert(data []byte, ip uint32, state *uint32) int {
	size := len(data)
	if size < 5 {
		return 0
	}
	mask := *state & 7
	pos := 0
	limit := size - 4
	ip += 5
	for {
		p := pos
		for p < limit && data[p]&0xfe != 0xe8 {
			p++
		}
		d := p - pos
		pos = p
		if p >= limit {
			if d > 2 {
				*state = 0
			} else {
				*state = mask >> uint(d)
			}
			return pos
		}
		if d > 2 {
			mask = 0
		} else {
			mask >>= uint(d)
			if mask != 0 && (mask > 4 || mask == 3 || test86MSByte(data[p+int(mask>>1)+1])) {
				mask = (mask >> 1) | 4
				pos++
				continue
			}
		}
		if test86MSByte(data[p+4]) {
			v := uint32(data[p+4])<<24 | uint32(data[p+3])<<16 | uint32(data[p+2])<<8 | uint32(data[p+1])
			cur := ip + uint32(pos)
			pos += 5
			v -= cur
			if mask != 0 {
				sh := (mask & 6) << 2
				if test86MSByte(byte(v >> sh)) {
					v ^= (uint32(0x100) << sh) - 1
					v -= cur
				}
				mask = 0
			}
			data[p+1] = byte(v)
			data[p+2] = byte(v >> 8)
			data[p+3] = byte(v >> 16)
			data[p+4] = byte(0 - ((v >> 24) & 1))
		} else {
			mask = (mask >> 1) | 4
			pos++
		}
	}
}
