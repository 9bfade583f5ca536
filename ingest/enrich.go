package ingest

import (
	"net/netip"
	"strings"

	"github.com/phuslu/iploc"
)

// Country returns the ISO 3166 code of the country of ip, from the
// IP-to-country table built into the binary, or "" when unknown (private
// and loopback addresses among them). The address itself is never stored.
func Country(ip netip.Addr) string {
	if !ip.IsValid() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
		return ""
	}
	c := iploc.IPCountry(ip.Unmap())
	if c == "ZZ" {
		return ""
	}
	return c
}

// Device classes of API.md.
const (
	DeviceDesktop = "desktop"
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
	DeviceBot     = "bot"
	DeviceOther   = "other"
)

var (
	botMarks    = []string{"bot", "crawl", "spider", "slurp", "curl/", "wget/", "python-", "go-http-client", "java/", "libwww", "httpclient", "headless", "phantomjs", "facebookexternalhit", "preview"}
	tabletMarks = []string{"ipad", "tablet", "kindle", "silk/", "playbook"}
	mobileMarks = []string{"mobi", "iphone", "ipod", "android", "windows phone", "blackberry", "opera mini"}
	deskMarks   = []string{"windows nt", "macintosh", "x11", "linux", "cros"}
)

// Device classifies a User-Agent as desktop, mobile, tablet, bot or other.
func Device(ua string) string {
	if ua == "" {
		return DeviceOther
	}
	ua = strings.ToLower(ua)
	has := func(marks []string) bool {
		for _, m := range marks {
			if strings.Contains(ua, m) {
				return true
			}
		}
		return false
	}
	switch {
	case has(botMarks):
		return DeviceBot
	case has(tabletMarks), strings.Contains(ua, "android") && !strings.Contains(ua, "mobile"):
		return DeviceTablet
	case has(mobileMarks):
		return DeviceMobile
	case has(deskMarks):
		return DeviceDesktop
	}
	return DeviceOther
}
