package backuptest

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// deviceInfo is the identity a backup records.
type deviceInfo struct {
	Name, ProductType, Version, Build string
	Serial, IMEI, ICCID, GUID         string
}

var modernDevices = []deviceInfo{
	{Name: "Ana's iPhone", ProductType: "iPhone14,5", Version: "17.5.1", Build: "21F90"},
	{Name: "Ben's iPad", ProductType: "iPad13,1", Version: "17.4.1", Build: "21E236"},
	{Name: "Chloé's iPhone", ProductType: "iPhone15,2", Version: "17.5.1", Build: "21F90"},
	{Name: "iPhone", ProductType: "iPhone12,1", Version: "16.7.8", Build: "20H343"},
}

var legacyDevice = deviceInfo{Name: "Dan's iPhone", ProductType: "iPhone8,1", Version: "9.3.5", Build: "13G36"}

// chipIDs gives the first half of new-style UDIDs by product type.
var chipIDs = map[string]string{
	"iPhone14,5": "00008110", "iPhone14,2": "00008110", "iPhone15,2": "00008120",
	"iPhone15,4": "00008120", "iPhone16,2": "00008130", "iPhone12,1": "00008030",
	"iPad13,1": "00008101", "iPad14,1": "00008110",
}

func defaultDevice(s *spec) deviceInfo {
	r := rand.New(rand.NewPCG(uint64(s.seed), 0x646576696365))
	var d deviceInfo
	switch {
	case s.device != nil:
		d = *s.device
	case s.legacy:
		d = legacyDevice
	default:
		d = modernDevices[uint64(s.seed)%uint64(len(modernDevices))]
	}
	const alnum = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
	serial := make([]byte, 12)
	for i := range serial {
		serial[i] = alnum[r.IntN(len(alnum))]
	}
	if strings.HasPrefix(d.ProductType, "iPhone8") {
		serial = serial[:11] // older serials are 11 characters
	}
	d.Serial = string(serial)
	d.GUID = strings.ToUpper(hexString(r, 32))
	if strings.HasPrefix(d.ProductType, "iPhone") {
		d.IMEI = luhn(fmt.Sprintf("35%012d", r.Int64N(1e12)))
		d.ICCID = luhn(fmt.Sprintf("8949%014d", r.Int64N(1e14)))
	}
	return d
}

// luhn appends the Luhn check digit to digits.
func luhn(digits string) string {
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return digits + fmt.Sprint((10-sum%10)%10)
}

// defaultUDID derives the device UDID from the seed: the old 40-hex form for
// legacy devices and with OldUDID, else 8hex-16hex uppercase.
func defaultUDID(s *spec, d deviceInfo) string {
	return udidFor(s.seed, d, s.oldUDID || s.legacy)
}

func udidFor(seed int64, d deviceInfo, old bool) string {
	r := rand.New(rand.NewPCG(uint64(seed), 0x75646964))
	if old {
		return hexString(r, 40)
	}
	chip, ok := chipIDs[d.ProductType]
	if !ok {
		chip = "00008030"
	}
	return chip + "-00" + strings.ToUpper(hexString(r, 14))
}
