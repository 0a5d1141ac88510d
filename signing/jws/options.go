package jws

// MaxSize is the default bound of a compact serialisation: what fits in
// one NATS message (1 MiB with headers) with headroom.
const MaxSize = 960 << 10

// SignOption adjusts Sign.
type SignOption interface {
	applySign(signConfig) signConfig
}

// OpenOption adjusts Open.
type OpenOption interface {
	applyOpen(openConfig) openConfig
}

// Options are applied by value: a pointer passed through an interface
// method would put every Sign's and Open's configuration on the heap.
type signConfig struct {
	cty  string
	kid  bool
	max  int
	algs []string
	typ  string
}

type openConfig struct {
	cty  string
	max  int
	algs []string
}

// ContentTypeOption is ContentType's option, for Sign and Open.
type ContentTypeOption string

// ContentType names what the payload is (the header's "cty"). Sign puts it
// in the header; Open refuses a JWS whose "cty" is another (without it,
// Open takes any, as a JOSE tool does).
func ContentType(cty string) ContentTypeOption { return ContentTypeOption(cty) }

func (o ContentTypeOption) applySign(c signConfig) signConfig { c.cty = string(o); return c }
func (o ContentTypeOption) applyOpen(c openConfig) openConfig { c.cty = string(o); return c }

// MaxSizeOption is WithMaxSize's option, for Sign and Open.
type MaxSizeOption int

// WithMaxSize bounds the compact serialisation to n bytes (default
// MaxSize): Sign refuses to make a larger one, Open to read one.
func WithMaxSize(n int) MaxSizeOption { return MaxSizeOption(n) }

func (o MaxSizeOption) applySign(c signConfig) signConfig { c.max = int(o); return c }
func (o MaxSizeOption) applyOpen(c openConfig) openConfig { c.max = int(o); return c }

// AlgorithmsOption is Algorithms' option, for Sign and Open.
type AlgorithmsOption []string

// Algorithms limits the algorithms: Sign refuses a key of another one,
// Open a header naming another one, before any signature is checked
// (default: every supported algorithm).
func Algorithms(algs ...string) AlgorithmsOption { return AlgorithmsOption(algs) }

func (o AlgorithmsOption) applySign(c signConfig) signConfig { c.algs = o; return c }
func (o AlgorithmsOption) applyOpen(c openConfig) openConfig { c.algs = o; return c }

type keyIDOption struct{}

// KeyID puts the leaf certificate's fingerprint (Fingerprint) in the
// header's "kid".
func KeyID() SignOption { return keyIDOption{} }

func (keyIDOption) applySign(c signConfig) signConfig { c.kid = true; return c }

func signOptions(opts []SignOption) signConfig {
	c := signConfig{max: MaxSize, typ: "JOSE"}
	for _, o := range opts {
		c = o.applySign(c)
	}
	return c
}

func openOptions(opts []OpenOption) openConfig {
	c := openConfig{max: MaxSize}
	for _, o := range opts {
		c = o.applyOpen(c)
	}
	return c
}

func allowed(alg string, algs []string) bool {
	if algs == nil {
		return true
	}
	for _, a := range algs {
		if a == alg {
			return true
		}
	}
	return false
}
