package backuptest

import (
	"fmt"
	"math/rand/v2"
)

// The catalog of domains and paths the generator draws from. Paths follow
// what real backups hold (the mvt iOS 14 Manifest.db, forensic write-ups);
// contents are random bytes.

// area produces files in a family of folders: folder k holds up to per files.
type area struct {
	weight int
	per    int // files per folder; 0 = one folder holds them all
	dir    func(r *rand.Rand, k int) string
	name   func(r *rand.Rand, k, j int) string
}

type single struct {
	path string
	zero bool // 0 bytes by default
}

type symlink struct{ path, target string }

type domainSpec struct {
	name     string
	skeleton []string // folders every backup of the domain has
	singles  []single
	areas    []area
	links    []symlink
}

// app is a third-party app the device has installed.
type app struct {
	bundle, name, version, artist, genre string
}

var installedApps = []app{
	{"net.whatsapp.WhatsApp", "WhatsApp Messenger", "24.11.85", "WhatsApp Inc.", "Social Networking"},
	{"net.whatsapp.WhatsAppSMB", "WhatsApp Business", "24.11.79", "WhatsApp Inc.", "Business"},
	{"com.google.chrome.ios", "Google Chrome", "125.0.6422.80", "Google LLC", "Utilities"},
	{"org.mozilla.ios.Firefox", "Firefox: Private, Safe Browser", "126.1", "Mozilla", "Productivity"},
	{"ph.telegra.Telegraph", "Telegram Messenger", "10.12.1", "Telegram FZ-LLC", "Social Networking"},
}

var appSkeleton = []string{"Library", "Library/Preferences", "Documents"}

var prefWords = []string{
	"springboard", "Preferences", "mobilephone", "MobileSMS", "mobilesafari", "weather",
	"AppStore", "itunesstored", "identityservicesd", "locationd", "healthd", "TTY",
	"coremedia", "VoiceOverTouch", "accessibility", "Accessibility", "DuetExpertCenter",
	"SetupAssistant", "DictionaryServices", "siri.shortcuts", "imessage", "parsecd",
	"spotlightui", "animoji", "calculateframework", "remotemanagementd", "fileproviderd",
	"biometrickitd", "dataaccess.babysitter", "corespotlightui", "ind", "messages.pinning",
	"mobiletimer", "mobilenotes", "camera", "Music", "podcasts", "stocks", "news", "tv",
	"Maps", "findmy", "homed", "sharingd", "nanoregistry", "wifid", "bluetoothd",
	"keyboard", "InputModePreferences", "assistant.support", "voicetrigger", "commcenter",
}

var countryCodes = func() []string {
	var cc []string
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			cc = append(cc, string([]rune{a, b}))
		}
	}
	return cc
}()

// uuidString returns an uppercase UUID made of r's next bits.
func uuidString(r *rand.Rand) string {
	a, b := r.Uint64(), r.Uint64()
	return fmt.Sprintf("%08X-%04X-4%03X-%04X-%012X", a>>32, (a>>16)&0xffff, a&0xfff,
		0x8000|(b>>48)&0x3fff, b&0xffffffffffff)
}

func lowerUUID(r *rand.Rand) string {
	a, b := r.Uint64(), r.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xfff,
		0x8000|(b>>48)&0x3fff, b&0xffffffffffff)
}

func hexString(r *rand.Rand, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[r.IntN(16)]
	}
	return string(b)
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func photoExt(r *rand.Rand) string {
	switch n := r.IntN(20); {
	case n < 14:
		return "HEIC"
	case n < 17:
		return "MOV"
	case n < 19:
		return "JPG"
	}
	return "PNG"
}

func fixed(dir string) func(*rand.Rand, int) string {
	return func(*rand.Rand, int) string { return dir }
}

func prefName(prefix string) func(*rand.Rand, int, int) string {
	return func(_ *rand.Rand, _, j int) string {
		w := prefWords[j%len(prefWords)]
		if j < len(prefWords) {
			return fmt.Sprintf("%s.%s.plist", prefix, w)
		}
		return fmt.Sprintf("%s.%s.%d.plist", prefix, w, j/len(prefWords))
	}
}

// whatsappDomains are the three containers of a WhatsApp-like app.
func whatsappDomains(bundle, phone string) []domainSpec {
	group := "group." + bundle + ".shared"
	return []domainSpec{
		{
			name:     "AppDomain-" + bundle,
			skeleton: appSkeleton,
			singles: []single{
				{path: "Library/Preferences/" + bundle + ".plist"},
				{path: "Documents/StatusMessages.plist"},
			},
			areas: []area{{weight: 1, per: 40,
				dir: func(_ *rand.Rand, k int) string {
					return fmt.Sprintf("Library/Application Support/%s/Media/Profile/%d", bundle, k)
				},
				name: func(r *rand.Rand, _, j int) string { return fmt.Sprintf("%s-%d.thumb", phone, 1600000000+j*7919) },
			}},
		},
		{
			name:     "AppDomainGroup-" + group,
			skeleton: []string{"Library", "Library/Preferences", "Message", "Message/Media"},
			singles: []single{
				{path: "ChatStorage.sqlite"},
				{path: "ChatStorage.sqlite-wal", zero: true},
				{path: "ChatStorage.sqlite-shm"},
				{path: "ContactsV2.sqlite"},
				{path: "Library/Preferences/" + group + ".plist"},
			},
			areas: []area{
				{weight: 10, per: 6,
					dir: func(_ *rand.Rand, k int) string {
						return fmt.Sprintf("Message/Media/%d@s.whatsapp.net/%x/%x", 491510000000+k/256, k%16, (k/16)%16)
					},
					name: func(r *rand.Rand, _, _ int) string {
						return lowerUUID(r) + "." + pick(r, "jpg", "jpg", "jpg", "mp4", "opus", "thumb", "webp")
					},
				},
				{weight: 2, per: 30,
					dir:  func(r *rand.Rand, _ int) string { return "stickers/" + hexString(r, 64) },
					name: func(r *rand.Rand, _, _ int) string { return lowerUUID(r) + ".webp" },
				},
			},
		},
		{
			name:     "AppDomainPlugin-" + bundle + ".ShareExtension",
			skeleton: appSkeleton,
			singles:  []single{{path: "Library/Preferences/" + bundle + ".ShareExtension.plist"}},
		},
	}
}

// catalog returns the domains with files, in the order their rows are written.
func catalog() []domainSpec {
	ds := []domainSpec{
		{
			name: "HomeDomain",
			skeleton: []string{"Library", "Library/Preferences", "Library/SMS", "Library/Safari",
				"Library/AddressBook", "Library/CallHistoryDB", "Library/Calendar", "Library/SpringBoard",
				"Library/Voicemail", "Library/Cookies", "Documents"},
			singles: []single{
				{path: "Library/SMS/sms.db"},
				{path: "Library/SMS/sms.db-wal", zero: true},
				{path: "Library/SMS/sms.db-shm"},
				{path: "Library/AddressBook/AddressBook.sqlitedb"},
				{path: "Library/AddressBook/AddressBookImages.sqlitedb"},
				{path: "Library/CallHistoryDB/CallHistory.storedata"},
				{path: "Library/Safari/History.db"},
				{path: "Library/Safari/Bookmarks.db"},
				{path: "Library/Safari/BrowserState.db"},
				{path: "Library/Calendar/Calendar.sqlitedb"},
				{path: "Library/Voicemail/voicemail.db"},
				{path: "Library/SpringBoard/LockBackgroundThumbnail.jpg"},
				{path: "Library/SpringBoard/IconState.plist"},
				{path: "Library/Cookies/Cookies.binarycookies", zero: true},
				{path: "Library/Preferences/.GlobalPreferences.plist"},
			},
			areas: []area{
				{weight: 3, dir: fixed("Library/Preferences"), name: prefName("com.apple")},
				{weight: 2, per: 3,
					dir: func(r *rand.Rand, _ int) string { return "Library/UserNotifications/" + uuidString(r) },
					name: func(_ *rand.Rand, _, j int) string {
						return []string{"Categories.plist", "DeliveredNotifications.plist", "PendingNotifications.plist"}[j]
					},
				},
			},
			links: []symlink{
				{"Library/Preferences/com.apple.carrier.plist", "/var/mobile/Library/Carrier Bundles/Overlay/device+carrier+Default.bundle+D101+45.0.plist"},
				{"Library/Preferences/com.apple.operator.merged.plist", "/var/mobile/Library/Carrier Bundles/Overlay/default+device+carrier+20820+Default.bundle:D101:45.0+D101+45.0.plist"},
				{"Library/Preferences/com.apple.carrier_1.plist", "/var/mobile/Library/Carrier Bundles/Overlay/device+carrier+Unknown.bundle+D101+45.0.plist"},
			},
		},
		{
			name:     "CameraRollDomain",
			skeleton: []string{"Media", "Media/DCIM", "Media/PhotoData", "Media/PhotoData/Thumbnails"},
			singles: []single{
				{path: "Media/PhotoData/Photos.sqlite"},
				{path: "Media/PhotoData/Photos.sqlite-wal"},
				{path: "Media/PhotoData/Photos.sqlite-shm"},
				{path: "Media/PhotoData/Journals/MigrationHistory.plist"},
				{path: "Media/PhotoData/momentanalysis", zero: true},
			},
			areas: []area{
				{weight: 10, per: 999,
					dir: func(_ *rand.Rand, k int) string { return fmt.Sprintf("Media/DCIM/%03dAPPLE", 100+k) },
					name: func(r *rand.Rand, k, j int) string {
						return fmt.Sprintf("IMG_%04d.%s", (k*999+j)%9999+1, photoExt(r))
					},
				},
				{weight: 5, per: 1,
					dir: func(_ *rand.Rand, k int) string {
						return fmt.Sprintf("Media/PhotoData/Thumbnails/V2/DCIM/%03dAPPLE/IMG_%04d.HEIC", 100+k/999, k%999+1)
					},
					name: func(*rand.Rand, int, int) string { return "5005.JPG" },
				},
				{weight: 3, per: 12,
					dir:  func(_ *rand.Rand, k int) string { return fmt.Sprintf("Media/PhotoData/CPLAssets/group%d", k+1) },
					name: func(r *rand.Rand, _, _ int) string { return uuidString(r) + "." + pick(r, "JPG", "HEIC", "PNG") },
				},
				{weight: 1, per: 2,
					dir: func(_ *rand.Rand, k int) string {
						return fmt.Sprintf("Media/PhotoData/Mutations/DCIM/%03dAPPLE/IMG_%04d/Adjustments", 100+k/999, k%999+1)
					},
					name: func(_ *rand.Rand, _, j int) string { return []string{"Adjustments.plist", "FullSizeRender.jpg"}[j] },
				},
			},
		},
		{
			name:     "MediaDomain",
			skeleton: []string{"Library", "Library/SMS", "Library/SMS/Attachments", "Media", "Media/Recordings"},
			singles: []single{
				// A non-ASCII name, hashed from its UTF-8 (NFC) bytes.
				{path: "Media/Recordings/Geburtstag Oma – Küche.m4a"},
				{path: "Media/Recordings/CloudRecordings.db"},
			},
			areas: []area{
				{weight: 6, per: 1,
					dir: func(r *rand.Rand, k int) string {
						return fmt.Sprintf("Library/SMS/Attachments/%02x/%02d/%s", k%256, (k/256)%16, uuidString(r))
					},
					name: func(r *rand.Rand, k, _ int) string {
						return fmt.Sprintf("IMG_%04d.%s", k%9999+1, pick(r, "jpeg", "HEIC", "MOV", "pluginPayloadAttachment"))
					},
				},
				{weight: 1, dir: fixed("Media/Recordings"),
					name: func(r *rand.Rand, _, j int) string {
						return fmt.Sprintf("2024%02d%02d %06d-%08X.m4a", 1+j%12, 1+j%28, r.IntN(240000), uint32(r.Uint64()))
					},
				},
			},
		},
		{
			name:     "HealthDomain",
			skeleton: []string{"Health"},
			singles: []single{
				{path: "Health/healthdb.sqlite"},
				{path: "Health/healthdb_secure.sqlite"},
				{path: "Health/healthdb_secure.sqlite-wal"},
			},
			areas: []area{{weight: 1, per: 4,
				dir: func(_ *rand.Rand, k int) string {
					return fmt.Sprintf("Health/Client/RelevanceEngine/Model/model%d.mdl/model", k)
				},
				name: func(_ *rand.Rand, _, j int) string {
					return []string{"features.dat", "model.espresso.net", "model.espresso.shape", "model.espresso.weights"}[j]
				},
			}},
		},
		{name: "KeychainDomain", singles: []single{{path: "keychain-backup.plist"}}},
		{
			name:     "WirelessDomain",
			skeleton: []string{"Library", "Library/Preferences", "Library/Databases"},
			singles: []single{
				{path: "Library/Preferences/com.apple.commcenter.plist"},
				{path: "Library/Databases/CellularUsage.db"},
				{path: "Library/Databases/DataUsage.sqlite"},
			},
		},
		{
			name:     "RootDomain",
			skeleton: []string{"Library", "Library/Preferences", "Library/Caches", "Library/Caches/locationd"},
			singles: []single{
				{path: "Library/Caches/locationd/clients.plist"},
				{path: "Library/Caches/locationd/significantVisitInterest.plist"},
			},
			areas: []area{{weight: 1, dir: fixed("Library/Preferences"), name: prefName("com.apple.system")}},
		},
		{
			name:     "ManagedPreferencesDomain",
			skeleton: []string{"mobile"},
			singles: []single{
				{path: "mobile/.GlobalPreferences.plist"},
				{path: "mobile/com.apple.webcontentfilter.plist"},
			},
		},
		{
			name:     "SysContainerDomain-com.apple.fairplayd.H2",
			skeleton: []string{"Library", "Library/Preferences", "Documents"},
			singles:  []single{{path: "Documents/iTunesRental.plist"}},
		},
		{
			name:     "SysContainerDomain-com.apple.metrickitd",
			skeleton: []string{"Library", "Library/Preferences"},
			singles:  []single{{path: "Library/Preferences/com.apple.metrickitd.plist"}},
		},
		{
			name:     "SysSharedContainerDomain-systemgroup.com.apple.configurationprofiles",
			skeleton: []string{"Library", "Library/ConfigurationProfiles", "Library/ConfigurationProfiles/PublicInfo"},
			singles: []single{
				{path: "Library/ConfigurationProfiles/CloudConfigurationDetails.plist"},
				{path: "Library/ConfigurationProfiles/PublicInfo/MCMeta.plist"},
			},
		},
		{
			name:     "DatabaseDomain",
			skeleton: []string{"timezone"},
			links:    []symlink{{"timezone/localtime", "/var/db/timezone/zoneinfo/Europe/Berlin"}},
		},
	}
	ds = append(ds, whatsappDomains("net.whatsapp.WhatsApp", "491511234567")...)
	ds = append(ds, whatsappDomains("net.whatsapp.WhatsAppSMB", "491517654321")...)
	ds[len(ds)-2].areas[0].weight = 2
	ds = append(ds,
		domainSpec{
			name:     "AppDomain-com.google.chrome.ios",
			skeleton: append(appSkeleton[:3:3], "Library/Application Support", "Library/Application Support/Google", "Library/Application Support/Google/Chrome", "Library/Application Support/Google/Chrome/Default"),
			singles: []single{
				{path: "Library/Preferences/com.google.chrome.ios.plist"},
				{path: "Library/Application Support/Google/Chrome/Local State"},
				{path: "Library/Application Support/Google/Chrome/Default/History"},
				{path: "Library/Application Support/Google/Chrome/Default/Web Data"},
				{path: "Library/Application Support/Google/Chrome/Default/Login Data"},
				{path: "Library/Application Support/Google/Chrome/Default/Bookmarks"},
			},
			areas: []area{
				{weight: 2, per: 200,
					dir: func(_ *rand.Rand, k int) string {
						return fmt.Sprintf("Library/Application Support/Google/Chrome/AutofillStates/%d.%d.%d.%06d", 2020+k/12, k%12+1, 2+k%27, 164946+k)
					},
					name: func(_ *rand.Rand, _, j int) string { return countryCodes[j] },
				},
				{weight: 3, per: 8,
					dir: func(r *rand.Rand, _ int) string {
						return "Library/Application Support/Google/Chrome/Default/Service Worker/CacheStorage/" + hexString(r, 40) + "/" + lowerUUID(r)
					},
					name: func(r *rand.Rand, _, j int) string {
						if j == 0 {
							return "index"
						}
						return hexString(r, 16) + "_0"
					},
				},
			},
			links: []symlink{{"Library/WebKit/WebsiteData/IndexedDB/v0", "/var/mobile/Containers/Data/Application/34B60ADD-2979-437D-896B-6CB58F9C3C44/Library/WebKit/WebsiteData/IndexedDB"}},
		},
		domainSpec{
			name:     "AppDomainGroup-group.com.google.chrome",
			skeleton: []string{"Library", "Library/Preferences"},
			singles:  []single{{path: "Library/Preferences/group.com.google.chrome.plist"}},
			areas: []area{{weight: 1, per: 50,
				dir: func(_ *rand.Rand, k int) string {
					return fmt.Sprintf("Library/Application Support/Google/Chrome/Crashpad/pending%d", k)
				},
				name: func(r *rand.Rand, _, _ int) string { return lowerUUID(r) + ".dmp" },
			}},
		},
		domainSpec{
			name:     "AppDomain-org.mozilla.ios.Firefox",
			skeleton: append(appSkeleton[:3:3], "Library/Application Support"),
			singles: []single{
				{path: "Library/Preferences/org.mozilla.ios.Firefox.plist"},
				{path: "Library/Application Support/browser.db"},
				{path: "Library/Application Support/logins.db"},
			},
			areas: []area{{weight: 1, per: 100,
				dir:  func(_ *rand.Rand, k int) string { return fmt.Sprintf("Library/Application Support/Favicons/%02d", k) },
				name: func(_ *rand.Rand, k, j int) string { return fmt.Sprintf("%08x.png", uint32(k*100+j)*2654435761) },
			}},
			links: []symlink{{"Library/WebKit/WebsiteData/IndexedDB/v0", "/var/mobile/Containers/Data/Application/947CE428-51A9-4336-996D-DC0638552F22/Library/WebKit/WebsiteData/IndexedDB"}},
		},
		domainSpec{
			name:     "AppDomain-ph.telegra.Telegraph",
			skeleton: appSkeleton,
			singles:  []single{{path: "Library/Preferences/ph.telegra.Telegraph.plist"}},
		},
		domainSpec{
			name:     "AppDomainGroup-group.ph.telegra.Telegraph",
			skeleton: []string{"telegram-data", "telegram-data/account-5849274655829483624", "telegram-data/account-5849274655829483624/postbox"},
			singles:  []single{{path: "telegram-data/account-5849274655829483624/postbox/db/db_sqlite"}},
			areas: []area{{weight: 3, per: 400,
				dir: func(_ *rand.Rand, k int) string {
					return fmt.Sprintf("telegram-data/account-5849274655829483624/postbox/media/part%d", k)
				},
				name: func(r *rand.Rand, k, j int) string {
					return fmt.Sprintf("telegram-cloud-photo-size-%d-%d-%s", 5+k, 5512345678900000000+int64(j)*104729, pick(r, "y", "x", "m", "s"))
				},
			}},
		},
		domainSpec{
			name:     "AppDomainGroup-group.com.apple.notes",
			skeleton: []string{"Accounts", "Accounts/7A3B52C2-4E1F-4C7D-9A44-1D2F3B4C5E6F", "Accounts/7A3B52C2-4E1F-4C7D-9A44-1D2F3B4C5E6F/Media"},
			singles: []single{
				{path: "NoteStore.sqlite"},
				{path: "NoteStore.sqlite-wal"},
			},
			areas: []area{{weight: 3, per: 1,
				dir: func(r *rand.Rand, _ int) string {
					return "Accounts/7A3B52C2-4E1F-4C7D-9A44-1D2F3B4C5E6F/Media/" + uuidString(r)
				},
				name: func(r *rand.Rand, k, _ int) string {
					return pick(r, fmt.Sprintf("IMG_%04d.jpeg", k%9999+1), fmt.Sprintf("Scan %d.pdf", k+1), "Pasted Graphic.png")
				},
			}},
		},
	)
	return ds
}

// emptyDomains have only their folders, as most system app containers in
// real backups do.
var emptyDomains = []string{
	"AppDomain-com.apple.mobilesafari", "AppDomain-com.apple.Maps", "AppDomain-com.apple.podcasts",
	"AppDomainPlugin-com.apple.mobilemail.MailQuickLookExtension",
	"AppDomainPlugin-com.apple.news.marketingnotificationextension", "AppDomain-com.apple.tv",
	"AppDomainPlugin-com.apple.stocks.widget", "AppDomain-com.apple.weather",
	"AppDomainGroup-group.com.apple.stocks", "AppDomain-com.apple.mobilemail",
	"AppDomainPlugin-com.apple.FileProvider.LocalStorage", "AppDomain-com.apple.Health",
	"AppDomainGroup-group.com.apple.Maps", "AppDomain-com.apple.AppStore",
	"AppDomain-com.apple.WebSheet", "AppDomain-com.apple.ScreenTimeUnlock",
}
