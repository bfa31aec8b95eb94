package backup

import "strings"

// Category is a kind of content a person recognises, for `usage --by
// category`. Its Key is stable (scripts match on it); its Name is for people.
type Category struct {
	Key, Name string
}

// The categories, in the order usage shows them when sizes tie.
var (
	CategoryPhotos   = Category{"photos", "Photos and videos"}
	CategoryMessages = Category{"messages", "Messages and attachments"}
	CategoryAppData  = Category{"app-data", "App data"}
	CategoryHealth   = Category{"health", "Health"}
	CategorySystem   = Category{"system", "System and settings"}
	CategoryOther    = Category{"other", "Other"}
)

// Categories lists every category.
var Categories = []Category{
	CategoryPhotos, CategoryMessages, CategoryAppData, CategoryHealth, CategorySystem, CategoryOther,
}

// categoryRule files the rows of a domain (or, with a trailing "*", of every
// domain starting so) under a category, optionally only below a folder.
type categoryRule struct {
	domain   string
	folder   string // "" for the whole domain; else a folder and everything below it
	category Category
}

// categoryRules decide each file's category: the first rule that matches
// wins, and a file no rule matches is Other. Extend the table here; keep
// narrower rules (with a folder) before wider ones of the same domain.
var categoryRules = []categoryRule{
	{"CameraRollDomain", "", CategoryPhotos},
	{"MediaDomain", "Media/DCIM", CategoryPhotos},
	{"MediaDomain", "Media/PhotoData", CategoryPhotos},
	{"HomeDomain", "Library/SMS", CategoryMessages},
	{"MediaDomain", "Library/SMS", CategoryMessages}, // SMS and iMessage attachments
	{"AppDomain*", "", CategoryAppData},              // AppDomain-, AppDomainGroup-, AppDomainPlugin-
	{"HealthDomain", "", CategoryHealth},
	{"KeychainDomain", "", CategorySystem},
	{"WirelessDomain", "", CategorySystem},
	{"SystemPreferencesDomain", "", CategorySystem},
	{"ManagedPreferencesDomain", "", CategorySystem},
	{"RootDomain", "", CategorySystem},
	{"HomeDomain", "Library/Preferences", CategorySystem},
}

// CategoryOf says which category a file of the index belongs to.
func CategoryOf(domain, relativePath string) Category {
	return Categories[categoryIndex(domain, relativePath)]
}

// categoryIndex is CategoryOf as an index into Categories. It runs for every
// row: no allocation.
func categoryIndex(domain, path string) int {
	for _, r := range categoryRules {
		if d, wild := strings.CutSuffix(r.domain, "*"); wild {
			if !strings.HasPrefix(domain, d) {
				continue
			}
		} else if domain != r.domain {
			continue
		}
		if r.folder != "" && !inFolder(path, r.folder) {
			continue
		}
		return categoryPos(r.category)
	}
	return categoryPos(CategoryOther)
}

// domainHasFolderRules reports whether a domain's category depends on the
// path, so that rows of the other domains need not be looked at one by one.
func domainHasFolderRules(domain string) bool {
	for _, r := range categoryRules {
		if r.folder != "" && r.domain == domain {
			return true
		}
	}
	return false
}

func inFolder(path, folder string) bool {
	return path == folder || (strings.HasPrefix(path, folder) && len(path) > len(folder) && path[len(folder)] == '/')
}

func categoryPos(c Category) int {
	for i, x := range Categories {
		if x == c {
			return i
		}
	}
	return len(Categories) - 1
}
