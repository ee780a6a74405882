"""The word lists behind the completeness catalogue (concepts.py), written here rather
than downloaded: the run needs no network. Python's own lists (sys.stdlib_module_names,
keyword.kwlist) come from the interpreter in concepts.py."""

# The languages of the Debian Administrator's Handbook translations in the embedded
# corpus (debian-handbook/<locale>) and of the fortunes packages: English name, endonyms.
LANGUAGES = {
    "English": ("English",), "French": ("French", "français", "Français"), "German": ("German", "Deutsch", "deutsch"),
    "Spanish": ("Spanish", "español", "Español", "castellano"), "Italian": ("Italian", "italiano", "Italiano"),
    "Dutch": ("Dutch", "Nederlands"), "Czech": ("Czech", "čeština", "česky"), "Vietnamese": ("Vietnamese", "Tiếng Việt"),
    "Polish": ("Polish", "polski", "Polski"), "Japanese": ("Japanese", "日本語"), "Catalan": ("Catalan", "català"),
    "Indonesian": ("Indonesian", "Bahasa Indonesia"), "Chinese": ("Chinese", "中文"), "Swedish": ("Swedish", "svenska", "Svenska"),
    "Romanian": ("Romanian", "română"), "Arabic": ("Arabic", "العربية"), "Russian": ("Russian", "русский", "Русский"),
    "Portuguese": ("Portuguese", "português"), "Greek": ("Greek",), "Latin": ("Latin",), "Hebrew": ("Hebrew",),
    "Turkish": ("Turkish",), "Korean": ("Korean",), "Danish": ("Danish",), "Norwegian": ("Norwegian",),
    "Finnish": ("Finnish",), "Hungarian": ("Hungarian",), "Persian": ("Persian",), "Hindi": ("Hindi",),
}

ELEMENTS = (
    "hydrogen helium lithium beryllium boron carbon nitrogen oxygen fluorine neon sodium magnesium aluminium aluminum "
    "silicon phosphorus sulfur sulphur chlorine argon potassium calcium scandium titanium vanadium chromium manganese "
    "iron cobalt nickel copper zinc gallium germanium arsenic selenium bromine krypton rubidium strontium yttrium "
    "zirconium niobium molybdenum technetium ruthenium rhodium palladium silver cadmium indium tin antimony tellurium "
    "iodine xenon caesium cesium barium lanthanum cerium praseodymium neodymium promethium samarium europium gadolinium "
    "terbium dysprosium holmium erbium thulium ytterbium lutetium hafnium tantalum tungsten rhenium osmium iridium "
    "platinum gold mercury thallium lead bismuth polonium astatine radon francium radium actinium thorium protactinium "
    "uranium neptunium plutonium americium curium berkelium californium einsteinium fermium mendelevium nobelium "
    "lawrencium rutherfordium dubnium seaborgium bohrium hassium meitnerium darmstadtium roentgenium copernicium "
    "nihonium flerovium moscovium livermorium tennessine oganesson"
).split()
# one concept per element: the spelling variants above are folded together
ELEMENT_VARIANTS = {"aluminum": "aluminium", "sulphur": "sulfur", "cesium": "caesium"}

COUNTRIES = (
    "Afghanistan|Albania|Algeria|Andorra|Angola|Argentina|Armenia|Australia|Austria|Azerbaijan|Bahamas|Bahrain|"
    "Bangladesh|Barbados|Belarus|Belgium|Belize|Benin|Bhutan|Bolivia|Bosnia|Botswana|Brazil|Brunei|Bulgaria|Burundi|"
    "Cambodia|Cameroon|Canada|Chad|Chile|China|Colombia|Comoros|Congo|Croatia|Cuba|Cyprus|Czechia|Denmark|Djibouti|"
    "Dominica|Ecuador|Egypt|Eritrea|Estonia|Eswatini|Ethiopia|Fiji|Finland|France|Gabon|Gambia|Georgia|Germany|Ghana|"
    "Greece|Grenada|Guatemala|Guinea|Guyana|Haiti|Honduras|Hungary|Iceland|India|Indonesia|Iran|Iraq|Ireland|Israel|"
    "Italy|Jamaica|Japan|Jordan|Kazakhstan|Kenya|Kiribati|Korea|Kosovo|Kuwait|Kyrgyzstan|Laos|Latvia|Lebanon|Lesotho|"
    "Liberia|Libya|Liechtenstein|Lithuania|Luxembourg|Madagascar|Malawi|Malaysia|Maldives|Mali|Malta|Mauritania|"
    "Mauritius|Mexico|Micronesia|Moldova|Monaco|Mongolia|Montenegro|Morocco|Mozambique|Myanmar|Namibia|Nauru|Nepal|"
    "Netherlands|New Zealand|Nicaragua|Niger|Nigeria|North Korea|Norway|Oman|Pakistan|Palau|Palestine|Panama|"
    "Papua New Guinea|Paraguay|Peru|Philippines|Poland|Portugal|Qatar|Romania|Russia|Rwanda|Samoa|San Marino|"
    "Saudi Arabia|Senegal|Serbia|Seychelles|Sierra Leone|Singapore|Slovakia|Slovenia|Somalia|South Africa|South Korea|"
    "Spain|Sri Lanka|Sudan|Suriname|Sweden|Switzerland|Syria|Taiwan|Tajikistan|Tanzania|Thailand|Togo|Tonga|Tunisia|"
    "Turkey|Turkmenistan|Tuvalu|Uganda|Ukraine|United Arab Emirates|United Kingdom|United States|Uruguay|Uzbekistan|"
    "Vanuatu|Vatican|Venezuela|Vietnam|Yemen|Zambia|Zimbabwe|England|Scotland|Wales|America|Britain|USA|UK|USSR"
).split("|")

NUMBERS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million billion"
).split()

MONTHS = "January February March April May June July August September October November December".split()
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
COLOURS = "red orange yellow green blue purple violet pink brown black white grey gray".split()
COLOUR_VARIANTS = {"gray": "grey"}
PLANETS = "Mercury Venus Earth Mars Jupiter Saturn Uranus Neptune Pluto".split()
