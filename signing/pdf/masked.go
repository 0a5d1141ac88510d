package pdf

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/digitorus/pdfsign/revocation"
	"github.com/digitorus/pdfsign/sign"
	"github.com/digitorus/pkcs7"
	"github.com/docaxis/docaxis/signing"
)

// pdfsign v0.9.0 finds its /Contents placeholder, a run of '0', by
// searching the whole file from the start. The zero padding of an earlier
// signature's /Contents is found first when it is at least as long: pdfsign
// then computes a wrong ByteRange and overwrites the earlier signature.
// That padding is long when the earlier signature reserved room for a
// timestamp, and in documents signed by most other tools.
//
// For such documents signMasked hands pdfsign a copy whose earlier /Contents
// hold 'f' instead of '0' (those bytes are in no earlier signature's
// ranges, and pdfsign does not read them), takes the incremental update it
// appends, which is the same for the real bytes, puts the real bytes back
// and replaces the signature pdfsign made over the masked copy with one
// over the real bytes, built as pdfsign builds it.

// placeholderFloor is a lower bound of the placeholder length pdfsign
// computes: its 1024-digit base plus the hex of the leaf certificate, plus
// 18000 digits reserved for a timestamp.
func placeholderFloor(leaf *x509.Certificate, tsa bool) int64 {
	n := int64(1024 + 2*len(leaf.Raw))
	if tsa {
		n += 18000
	}
	return n
}

// longestZeroRun returns the length of the longest run of '0' bytes.
func longestZeroRun(r io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	var best, cur int64
	for off := int64(0); off < size; {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		for _, c := range buf[:n] {
			if c == '0' {
				cur++
				best = max(best, cur)
			} else {
				cur = 0
			}
		}
		off += int64(n)
		if n == 0 && err != nil {
			return 0, fmt.Errorf("read at offset %d: %w", off, err)
		}
	}
	return best, nil
}

// signMasked signs input (whose earlier /Contents occupy holes) for the
// documents described above. data is set up as for pdfsign.
func signMasked(ctx context.Context, in io.ReaderAt, size int64, holes [][2]int64, data sign.SignData, id *signing.Identity, tsaURL string) ([]byte, error) {
	orig := make([]byte, size)
	if _, err := in.ReadAt(orig, 0); err != nil && size > 0 {
		return nil, fmt.Errorf("read input: %w", err)
	}
	masked := bytes.Clone(orig)
	for _, h := range holes {
		for i := h[0] + 1; i < h[1]-1 && i < size; i++ {
			if masked[i] == '0' {
				masked[i] = 'f'
			}
		}
	}
	floor := placeholderFloor(data.Certificate, tsaURL != "")
	if run, _ := longestZeroRun(bytes.NewReader(masked), size); run >= floor {
		return nil, fmt.Errorf("%w: a run of %d '0' outside any signature's /Contents would be taken by pdfsign v0.9.0 for its placeholder", ErrMalformed, run)
	}
	if tsaURL != "" {
		// Let pdfsign reserve room for the timestamp without asking the
		// real TSA about a signature that is thrown away.
		relay, err := startPlaceholderTSA()
		if err != nil {
			return nil, err
		}
		defer relay.close()
		data.TSA = sign.TSA{URL: relay.url}
	}
	var buf bytes.Buffer
	if err := guarded(ctx, func() error { return runPDFSign(bytes.NewReader(masked), size, &buf, data) }); err != nil {
		return nil, err
	}
	out := buf.Bytes()
	if len(out) <= len(masked) || !bytes.Equal(out[:size], masked) {
		return nil, fmt.Errorf("%w: pdfsign changed bytes before its incremental update", ErrMalformed)
	}
	copy(out, orig)

	// The new signature is the one whose /Contents lies in the update.
	res, err := scan(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		return nil, err
	}
	var hole [2]int64
	for _, sd := range res.sigs {
		if c, _ := sd.dict.key("Contents"); c.start >= size {
			hole = [2]int64{c.start, c.end}
		}
	}
	br := []int64{0, hole[0], hole[1], int64(len(out)) - hole[1]}
	if hole[0] == 0 || !bytes.Contains(out[size:hole[0]], []byte(fmt.Sprintf("/ByteRange [%d %d %d %d]", br[0], br[1], br[2], br[3]))) {
		return nil, fmt.Errorf("%w: cannot find the signature pdfsign added", ErrMalformed)
	}
	content := make([]byte, 0, br[1]+br[3])
	content = append(append(content, out[:br[1]]...), out[br[2]:]...)
	der, err := buildCMS(ctx, content, id, data.DigestAlgorithm, tsaURL)
	if err != nil {
		return nil, err
	}
	room := int(hole[1]-hole[0]) - 2
	if hex.EncodedLen(len(der)) > room {
		return nil, fmt.Errorf("%w: signature of %d bytes does not fit the %d pdfsign reserved", ErrMalformed, len(der), room/2)
	}
	digits := out[hole[0]+1 : hole[1]-1]
	n := hex.Encode(digits, der)
	for i := n; i < len(digits); i++ {
		digits[i] = '0'
	}
	return out, nil
}

// buildCMS makes the detached CMS pdfsign v0.9.0 makes (createSignature in
// its sign package): SHA-2 digest, an empty Adobe revocation-info attribute,
// an ESS signing-certificate-v2 attribute, the chain without the leaf, and
// optionally an RFC 3161 token over the signature value.
func buildCMS(ctx context.Context, content []byte, id *signing.Identity, h crypto.Hash, tsaURL string) ([]byte, error) {
	leaf := id.Chain[0]
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, fmt.Errorf("CMS: %w", err)
	}
	digestOID := map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA256: oidSHA256, crypto.SHA384: oidSHA384, crypto.SHA512: oidSHA512}[h]
	if digestOID == nil {
		return nil, fmt.Errorf("CMS: digest %v not supported", h)
	}
	sd.SetDigestAlgorithm(digestOID)
	sum := h.New()
	sum.Write(leaf.Raw)
	certID := []any{sum.Sum(nil)}
	if h != crypto.SHA256 { // SHA-256 is the default, left out in DER
		certID = []any{pkix.AlgorithmIdentifier{Algorithm: digestOID}, sum.Sum(nil)}
	}
	essCertIDv2, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: marshalAll(certID...)})
	if err != nil {
		return nil, fmt.Errorf("CMS: %w", err)
	}
	signingCert, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true,
		Bytes: marshalAll(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: essCertIDv2})})
	if err != nil {
		return nil, fmt.Errorf("CMS: %w", err)
	}
	cfg := pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{
		{Type: asn1.ObjectIdentifier{1, 2, 840, 113583, 1, 1, 8}, Value: revocation.InfoArchival{}},
		{Type: oidAttrSigningCertV2, Value: asn1.RawValue{FullBytes: signingCert}},
	}}
	if err := sd.AddSignerChain(leaf, id.Key, id.Chain[1:], cfg); err != nil {
		return nil, fmt.Errorf("CMS: %w", err)
	}
	sd.Detach()
	if tsaURL != "" {
		u, err := parseTSAURL(tsaURL)
		if err != nil {
			return nil, err
		}
		si := &sd.GetSignedData().SignerInfos[0]
		token, err := timestampToken(ctx, u, si.EncryptedDigest, h)
		if err != nil {
			return nil, err
		}
		if err := si.SetUnauthenticatedAttributes([]pkcs7.Attribute{
			{Type: oidAttrTimestampToken, Value: asn1.RawValue{FullBytes: token}},
		}); err != nil {
			return nil, fmt.Errorf("CMS: %w", err)
		}
	}
	return sd.Finish()
}

// marshalAll concatenates the DER of vs; they are fixed types that marshal.
func marshalAll(vs ...any) []byte {
	var out []byte
	for _, v := range vs {
		b, _ := asn1.Marshal(v)
		out = append(out, b...)
	}
	return out
}
