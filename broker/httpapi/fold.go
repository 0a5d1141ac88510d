package httpapi

import "strings"

// vnFold maps Vietnamese letters to their base Latin letter, so that a
// search typed without diacritics ("cong van") finds "Công văn".
var vnFold = func() *strings.Replacer {
	groups := map[string]string{
		"a": "àáạảãâầấậẩẫăằắặẳẵ",
		"e": "èéẹẻẽêềếệểễ",
		"i": "ìíịỉĩ",
		"o": "òóọỏõôồốộổỗơờớợởỡ",
		"u": "ùúụủũưừứựửữ",
		"y": "ỳýỵỷỹ",
		"d": "đ",
	}
	var pairs []string
	for base, letters := range groups {
		for _, r := range letters {
			pairs = append(pairs, string(r), base)
		}
	}
	return strings.NewReplacer(pairs...)
}()

// fold lower-cases s and strips Vietnamese diacritics, precomposed or
// combining (text typed on some systems arrives decomposed).
func fold(s string) string {
	s = vnFold.Replace(strings.ToLower(s))
	return strings.Map(func(r rune) rune {
		if r >= 0x300 && r <= 0x36f {
			return -1
		}
		return r
	}, s)
}
