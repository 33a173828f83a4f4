; Inno Setup script for LiverSeg Studio on Windows (built by build_installer.py when iscc is on the PATH):
;   iscc /DAppVersion=0.1.0 /DSourceDir=dist\LiverSegStudio /DOutputDir=dist /DOutputBase=LiverSegStudio-0.1.0-windows-x86_64-setup installer\liverseg.iss
; Installs per user by default (no administrator rights needed on lab PCs), adds Start menu entries
; for the app (windowed) and for the self-test, and an uninstaller.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\dist\LiverSegStudio"
#endif
#ifndef OutputDir
  #define OutputDir "..\dist"
#endif
#ifndef IconFile
  #define IconFile "..\build\liverseg.ico"
#endif
#ifndef OutputBase
  #define OutputBase "LiverSegStudio-setup"
#endif

[Setup]
AppId={{6B7F2C0E-3D4A-4E8B-9B61-2F5C1A7D9E40}
AppName=LiverSeg Studio
AppVersion={#AppVersion}
AppPublisher=LiverSeg Studio developers
DefaultDirName={autopf}\LiverSeg Studio
DefaultGroupName=LiverSeg Studio
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#OutputDir}
OutputBaseFilename={#OutputBase}
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\LiverSegStudio.exe
Compression=lzma2/max
SolidCompression=yes
DiskSpanning=no
WizardStyle=modern

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\LiverSeg Studio"; Filename: "{app}\LiverSegStudio.exe"
Name: "{group}\LiverSeg Studio self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\liverseg.exe"" selftest"
Name: "{group}\Uninstall LiverSeg Studio"; Filename: "{uninstallexe}"
Name: "{autodesktop}\LiverSeg Studio"; Filename: "{app}\LiverSegStudio.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop icon"; GroupDescription: "Additional icons:"; Flags: unchecked

[Run]
Filename: "{app}\LiverSegStudio.exe"; Description: "Start LiverSeg Studio"; Flags: nowait postinstall skipifsilent
