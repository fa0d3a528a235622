package modelverify

import (
	"syscall"
	"time"
)

func stampFromStat(st *syscall.Stat_t) fileStamp {
	return fileStamp{
		dev: uint64(st.Dev), ino: st.Ino, size: st.Size,
		mtime: time.Unix(st.Mtimespec.Sec, st.Mtimespec.Nsec), ctime: time.Unix(st.Ctimespec.Sec, st.Ctimespec.Nsec),
	}
}
