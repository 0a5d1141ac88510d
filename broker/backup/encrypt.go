package backup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"filippo.io/age"
)

// An archive may be encrypted to age recipients (Source.Recipients): the
// tar stream as a whole is the plaintext of an age file, so a backup that
// leaves the bus's machine does not give away the CA's, the bus's or the
// agencies' keys to whoever reads it. age authenticates every 64 KiB
// chunk and the end of the stream, so a changed or cut ciphertext fails
// as damaged or incomplete, before the manifest is even read.
//
// Encryption is not a signature: anyone who knows a recipient can write an
// archive to it. The manifest's seal and digests say the archive is whole,
// not who wrote it.

// ageMagic begins every age file (age-encryption.org/v1).
const ageMagic = "age-encryption.org/v1\n"

// encryptTo wraps w so that what is written to it is encrypted to
// recipients; the caller must Close the result to finish the archive.
func encryptTo(w io.Writer, recipients []age.Recipient) (io.WriteCloser, error) {
	enc, err := age.Encrypt(w, recipients...)
	if err != nil {
		return nil, fmt.Errorf("backup: encrypt: %w", err)
	}
	return enc, nil
}

// Open opens the archive at path and returns its tar stream, decrypted
// with identities when the archive is encrypted. An encrypted archive that
// none of identities opens fails with ErrEncrypted; a ciphertext changed
// or cut short fails on read with ErrDamaged or ErrTruncated.
func Open(path string, identities ...age.Identity) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(f)
	magic, _ := br.Peek(len(ageMagic))
	if !bytes.Equal(magic, []byte(ageMagic)) {
		return &archiveReader{Reader: br, f: f}, nil
	}
	if len(identities) == 0 {
		f.Close()
		return nil, fmt.Errorf("%w (age): give the identity (key file) it was encrypted to", ErrEncrypted)
	}
	dec, err := age.Decrypt(br, identities...)
	if err != nil {
		f.Close()
		var none *age.NoIdentityMatchError
		if errors.As(err, &none) {
			return nil, fmt.Errorf("%w (age): none of the %d identities given opens it", ErrEncrypted, len(identities))
		}
		return nil, fmt.Errorf("%w: age header: %v", ErrDamaged, err)
	}
	return &archiveReader{Reader: &decrypted{r: dec}, f: f}, nil
}

// archiveReader is an archive's tar stream with the file under it.
type archiveReader struct {
	io.Reader
	f *os.File
}

func (a *archiveReader) Close() error { return a.f.Close() }

// decrypted reads an age payload and says what a failure means for the
// archive: age fails a chunk changed in transit, and an end cut short, with
// errors of its own.
type decrypted struct{ r io.Reader }

func (d *decrypted) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: the encrypted archive ends early: %v", ErrTruncated, err)
		} else {
			err = fmt.Errorf("%w: decrypt: %v", ErrDamaged, err)
		}
	}
	return n, err
}

// IsEncrypted tells whether the archive at path is encrypted (age).
func IsEncrypted(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	b := make([]byte, len(ageMagic))
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false, err
	}
	return string(b[:n]) == ageMagic, nil
}
