package modelverify

// EditRecordSignedDigests rewrites the digests that the verification record of repo@commit
// says each file was verified with, and saves it as the gate would: a record that was written
// by the service itself, yet disagrees with the signed manifest.
func EditRecordSignedDigests(v *Verifier, repoID, commit string, edit func(file string, signed []string) []string) bool {
	rec, _ := v.readRecord(repoID, commit)
	if rec == nil {
		return false
	}
	for i := range rec.Files {
		rec.Files[i].Signed = edit(rec.Files[i].Name, rec.Files[i].Signed)
	}
	return v.saveRecord(rec) == nil
}

// ParseRecord authenticates and decodes a record file's bytes as Verify does for repo@commit,
// and reports whether the record would be used, and what the audit log would say of it.
func ParseRecord(v *Verifier, data []byte, repoID, commit string) (bool, RecordUse) {
	rec, use := v.parseRecord(data, repoID, commit)
	if rec != nil && (rec.Repo != repoID || rec.Commit != commit) {
		panic("a record for another commit was accepted")
	}
	return rec != nil, use
}

// RecordBytes returns the record file of repo@commit as the cache holds it.
func RecordBytes(v *Verifier, repoID, commit string) ([]byte, error) {
	return readBounded(v.recordPath(repoID, commit), maxRecordFileSize)
}

// AsRefusal is asRefusal, for the tests of how errors become refusals.
var AsRefusal = asRefusal

// SetRefusal fills a record's reasons and message from err, as the Verifier does.
func SetRefusal(rec *Record, err error) { rec.setRefusal(err) }
